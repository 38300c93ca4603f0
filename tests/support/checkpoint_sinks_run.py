"""A banking demo run into several sinks at once that checkpoints, every record carrying
``event_id``, for the resume fault tests: run as a program.

    python checkpoint_sinks_run.py CONFIG.json CHECKPOINT [--kill-at N] [--term-at N] [--plain]

CONFIG names the sinks (each optional): ``jsonl`` (a path), ``postgres`` ([url, table]),
``redis`` ([url, stream], explicit ids), ``kafka`` ([bootstrap, topic], JSON values) and
``amqp`` ([url, exchange]); and ``subjects``, ``ticks``, ``every`` (seconds between
checkpoints). It resumes from CHECKPOINT when that file exists (and goes on checkpointing to
it), else starts afresh. ``--kill-at N`` sends the process SIGKILL at its N-th 'logout' event
(or the first after it once a checkpoint was written; a Kafka producer's records reach the
broker first, in the open transaction), ``--term-at N`` sends SIGTERM there (a
graceful stop); ``--plain`` runs without checkpoints (the uninterrupted run).
"""

import json
import os
import signal
import sys
from pathlib import Path

from doge_datagen import DbSink, FileSink
from doge_datagen.demo import banking_generator
from doge_datagen.sinks.record import Record

FIELDS = ["event_id", "timestamp", "user_id", ("event", "trigger"), "balance"]
# A Record numbers the records one event gives it (the N of SEED:SUBJECT:TICK:N): one each.
RECORD, DB_RECORD, REDIS_RECORD, KAFKA_RECORD, AMQP_RECORD = (Record(FIELDS) for _ in range(5))
START = 1_700_000_000_000


def sinks(config):
    made = []
    if "jsonl" in config:
        made.append(FileSink(config["jsonl"], RECORD))
    if "postgres" in config:
        url, table = config["postgres"]
        made.append(DbSink(url, table, DB_RECORD, create=True, batch_size=40, flush_interval=None))
    if "redis" in config:
        from doge_datagen.sinks.redis_stream import RedisStreamSinkFactory

        url, stream = config["redis"]
        made.append(
            RedisStreamSinkFactory(url).create(stream, None, REDIS_RECORD, explicit_ids=True)
        )
    if "kafka" in config:
        from doge_datagen.sinks.kafka import KafkaSinkFactory

        bootstrap, topic = config["kafka"]
        factory = KafkaSinkFactory(bootstrap, conf={"linger.ms": 5})
        made.append(
            factory.create(
                topic, lambda s, t: str(s.user_id), KAFKA_RECORD, value_serializer="json"
            )
        )
    if "amqp" in config:
        from doge_datagen.sinks.rabbitmq import RabbitMQSinkFactory

        url, exchange = config["amqp"]
        made.append(RabbitMQSinkFactory(url).create(exchange, None, AMQP_RECORD))
    return made


def main(argv):
    config = json.loads(Path(argv[0]).read_text())
    saved = Path(argv[1])
    made = sinks(config)
    datagen = banking_generator(
        made[0],
        made[0],
        made[0],
        made[0],
        subjects_num=config["subjects"],
        ticks_num=config["ticks"],
        seed=9,
        timestamp_start=START,
    )
    for transition in datagen.transitions:
        transition.event_sinks = list(made)
    # A bounded run leaves SIGTERM to the program (the command line stops on it; so here).
    signal.signal(signal.SIGTERM, lambda signum, frame: datagen.stop())
    for flag, signum in (("--kill-at", signal.SIGKILL), ("--term-at", signal.SIGTERM)):
        if flag not in argv:
            continue
        at = int(argv[argv.index(flag) + 1])
        seen = [0]
        logout = next(t for t in datagen.transitions if t.trigger == "logout")

        def crash(subject, transition, at=at, signum=signum, seen=seen):
            seen[0] += 1
            if seen[0] == at or (seen[0] > at and signum == signal.SIGKILL and saved.exists()):
                if signum != signal.SIGKILL or saved.exists():
                    for sink in made:  # the records since the checkpoint reach the broker
                        producer = getattr(sink, "producer", None)
                        if signum == signal.SIGKILL and hasattr(producer, "flush"):
                            producer.flush(30)
                    os.kill(os.getpid(), signum)
            return True

        logout.action_callback = crash
    if "--plain" in argv:
        summary = datagen.start()
    else:
        resume = saved if saved.exists() else None
        summary = datagen.start(
            checkpoint=saved, checkpoint_every=config.get("every", 0.05), resume=resume
        )
    print("stopped" if summary.stopped else "ended", summary.ticks, summary.events, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
