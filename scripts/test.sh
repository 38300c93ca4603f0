#!/usr/bin/env bash
# Install everything into .venv, make sure the local services run, run the whole test suite
# (lint, type check, pytest). The Kafka-protocol broker is started by the tests themselves
# (tests/support/kafka_fixtures.py). Extra arguments go to pytest.
DOGE_EXTRAS=test,dev
DOGE_NEEDS_BROWSER=1
source "$(dirname "$0")/setup-env.sh"

# The local services the sink tests use run on this kind of machine; start any that stopped
# (each with the command the machine itself uses) and wait for its port.
port_open() { (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
ensure_service() {  # PORT NAME COMMAND...
    local port=$1 name=$2
    shift 2
    port_open "$port" && return 0
    command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || return 0
    echo "starting $name" >&2
    "$@" >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do port_open "$port" && return 0; sleep 1; done
    echo "warning: $name did not come up on port $port" >&2
}
if [ -d /etc/postgresql ]; then
    ensure_service 5432 PostgreSQL pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
fi
ensure_service 3306 MariaDB start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
ensure_service 6379 Redis redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
ensure_service 5672 RabbitMQ rabbitmq-server -detached
ensure_service 1883 Mosquitto mosquitto -d -c /etc/mosquitto/mosquitto.conf
ensure_service 4222 NATS start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server \
    -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log

.venv/bin/ruff check doge_datagen tests examples bench
# mypy: the package strictly ([tool.mypy] in pyproject.toml, where each module that keeps a
# check off says why). The examples are the README's user code, so plain mypy checks them:
# --config-file= reads no configuration (no strict flags), the clients' missing stubs are
# ignored, the package's own errors are left to the strict run, and the cache is their own
# since the options differ. The README's Python blocks get a plain check too, in
# tests/docs/test_readme_program.py.
.venv/bin/mypy doge_datagen
.venv/bin/mypy --config-file= --python-version 3.10 --ignore-missing-imports \
    --follow-imports silent --cache-dir .mypy_cache/examples examples
# The documentation site (mkdocs.yml): README.md, doc/ and the API reference from the
# docstrings; --strict makes a broken link or anchor, a page left out of the nav or a docstring
# the reference cannot read an error. Built into a temporary directory, a few seconds.
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
.venv/bin/python -m pytest "$@"
# The C loop's tests and 200 fuzzed models again, against a build under AddressSanitizer and
# UndefinedBehaviorSanitizer (two to three minutes on two cores).
bash scripts/sanitize.sh
