#!/usr/bin/env bash
# Install everything into .venv, make sure the local databases run, run the whole test suite
# (lint, type check, pytest). The Kafka-protocol broker is started by the tests themselves
# (tests/kafka_fixtures.py). Extra arguments go to pytest.
DOGE_EXTRAS=test,dev
source "$(dirname "$0")/setup-env.sh"

# PostgreSQL and MariaDB run on this kind of machine; start them if they were stopped.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    fi
fi
if [ -x /usr/sbin/mariadbd ] && ! (echo > /dev/tcp/127.0.0.1/3306) 2>/dev/null; then
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
    for _ in $(seq 1 30); do (echo > /dev/tcp/127.0.0.1/3306) 2>/dev/null && break; sleep 1; done
fi

.venv/bin/ruff check doge_datagen tests examples bench
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
