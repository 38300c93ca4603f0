"""A banking demo run into a database table that checkpoints, for the resume fault tests: run
as a program.

    python checkpoint_db_run.py URL TABLE CHECKPOINT SUBJECTS TICKS [--kill-at N] [--plain]

It resumes from CHECKPOINT when that file exists (and goes on checkpointing to it), else starts
afresh. The table is made by the sink when missing. ``--kill-at N`` sends the process SIGKILL
at its N-th 'logout' event (or the first after it once a checkpoint was written); ``--plain``
runs without checkpoints (the uninterrupted run).
Batches are small and checkpoints seconds apart, so that a kill finds batches committed after
the last checkpoint.
"""

import sys
from pathlib import Path

from doge_datagen import DbSink
from doge_datagen.demo import banking_generator

# Run as a program: the tests' folder on the path, for the support package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.logouts import kill_at  # noqa: E402

EVERY = 0.25
START = 1_700_000_000_000


def row(timestamp, subject, transition):
    return {
        "ts": timestamp,
        "user_id": subject.user_id,
        "event": transition.trigger,
        "balance": subject.balance,
    }


def main(argv):
    url, table, saved = argv[0], argv[1], Path(argv[2])
    subjects, ticks = int(argv[3]), int(argv[4])
    sink = DbSink(url, table, row, create=True, batch_size=40, flush_interval=None)
    datagen = banking_generator(
        sink,
        sink,
        sink,
        sink,
        subjects_num=subjects,
        ticks_num=ticks,
        seed=5,
        timestamp_start=START,
    )
    if "--kill-at" in argv:
        kill_at(datagen, int(argv[argv.index("--kill-at") + 1]), saved)
    if "--plain" in argv:
        datagen.start()
        return
    resume = saved if saved.exists() else None
    summary = datagen.start(checkpoint=saved, checkpoint_every=EVERY, resume=resume)
    print("resumed" if resume is not None else "fresh", summary.ticks, sink.repeated, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
