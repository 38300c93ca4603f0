"""A banking demo run into a RabbitMQ exchange that checkpoints, its messages carrying
``event_id``, for the resume fault tests: run as a program.

    python checkpoint_bus_run.py AMQP_URL EXCHANGE CHECKPOINT [--kill-at N] [--plain]

It resumes from CHECKPOINT when that file exists (and goes on checkpointing to it), else starts
afresh. ``--kill-at N`` sends the process SIGKILL at its N-th 'logout' event, or the first
after it once a checkpoint was written; ``--plain`` runs without checkpoints.
"""

import sys
from pathlib import Path

from doge_datagen.demo import banking_generator
from doge_datagen.sinks.rabbitmq import RabbitMQSinkFactory
from doge_datagen.sinks.record import Record

# Run as a program: the tests' folder on the path, for the support package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.logouts import kill_at  # noqa: E402

EVERY = 0.1
RECORD = Record(["event_id", "timestamp", "user_id", ("event", "trigger"), "balance"])


def main(argv):
    url, exchange, saved = argv[0], argv[1], Path(argv[2])
    sink = RabbitMQSinkFactory(url).create(exchange, None, RECORD)
    datagen = banking_generator(
        sink, sink, sink, sink, subjects_num=2000, ticks_num=600, seed=4, timestamp_start=0
    )
    if "--kill-at" in argv:
        kill_at(datagen, int(argv[argv.index("--kill-at") + 1]), saved)
    if "--plain" in argv:
        datagen.start()
        return
    resume = saved if saved.exists() else None
    summary = datagen.start(checkpoint=saved, checkpoint_every=EVERY, resume=resume)
    print("resumed" if resume is not None else "fresh", summary.ticks, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
