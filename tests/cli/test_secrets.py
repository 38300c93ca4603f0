"""One sentinel password, planted in every kind of sink that takes a secret, must never show in
anything a run prints or logs: banners, progress, summaries, errors with their tracebacks
(``--debug``) and every log line down to DEBUG (``--log-level debug``, librdkafka's included).

The servers here run without authentication, so a credential is either ignored or refused:
both paths (a run that works, an error) are gone through, and the error paths are where a
client library is most likely to echo what it was given. The per-sink contract suite checks
reprs and summaries in-process; this test looks at the whole command as a user runs it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.services import service_missing

ROOT = Path(__file__).resolve().parents[2]
SENTINEL = "Sentinel-Pw-7f1a9c"
SCHEMA = ROOT / "tests" / "data" / "event_row.avsc"


def run(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", "--debug", "--log-level", "debug", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT), **(env or {})),
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.mariadb
def test_a_sentinel_password_never_shows_in_any_output_or_log(
    tmp_path, kafka_bootstrap, postgres_url, mariadb_url
):
    from support.kafka_fixtures import create_topic

    pg = postgres_url.split("://", 1)[1].split("@", 1)[-1]
    maria = mariadb_url.split("://", 1)[1].split("@", 1)[-1]
    topic = create_topic(kafka_bootstrap, prefix="doge-secret")
    if not SCHEMA.exists():
        service_missing(f"the test schema {SCHEMA}")
    urls = {
        "postgresql": f"postgresql://postgres:{SENTINEL}@{pg}?table=doge_secret",
        "mariadb": f"mysql+pymysql://root:{SENTINEL}@{maria}?table=doge_secret",
        "kafka (SASL)": f"kafka://doge:{SENTINEL}@{kafka_bootstrap}/{topic}",
        "kafka (sasl.password)": (
            f"kafka://{kafka_bootstrap}/{topic}?security.protocol=SASL_PLAINTEXT"
            f"&sasl.mechanism=PLAIN&sasl.username=doge&sasl.password={SENTINEL}"
        ),
        "kafka+avro (registry basic auth)": (
            f"kafka+avro://{kafka_bootstrap}/{topic}?registry=mock://&schema={SCHEMA}"
            f"&registry.basic.auth.credentials.source=USER_INFO"
            f"&registry.basic.auth.user.info=doge:{SENTINEL}"
        ),
        "redis": f"redis://:{SENTINEL}@127.0.0.1:6379/doge-secret?timeout=2",
        "amqp": f"amqp://guest:{SENTINEL}@127.0.0.1:5672/amq.topic?timeout=2",
        "mqtt": f"mqtt://doge:{SENTINEL}@127.0.0.1:1883/doge-secret?qos=1&timeout=2",
        "nats": f"nats://doge:{SENTINEL}@127.0.0.1:4222/doge.secret?timeout=2",
        "postgresql (password_env)": (
            f"postgresql://postgres@{pg}?table=doge_secret&password_env=DOGE_SECRET_PW"
        ),
    }
    seen = {}
    for kind, url in urls.items():
        assert SENTINEL in url or "password_env" in url  # the test could fail
        done = run(
            "demo",
            "--subjects",
            "200",
            "--ticks",
            "60",
            "--progress",
            "--timestamp-start",
            "1700000000000",
            "--sink",
            url,
            env={"DOGE_SECRET_PW": SENTINEL},
        )
        seen[kind] = (done.returncode, done.stdout + done.stderr)
    leaked = [kind for kind, (_, text) in seen.items() if SENTINEL in text]
    assert not leaked, {kind: seen[kind][1][-2000:] for kind in leaked}
    # Each run did go through a path that shows the sink: its banner, with the secret masked.
    for kind, (code, text) in seen.items():
        assert "banking demo writing to" in text or code != 0, (kind, text[-1000:])
        assert "***" in text or "password" not in urls[kind], (kind, text[-1000:])
