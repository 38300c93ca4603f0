"""A banking demo run that checkpoints, for the resume fault tests: run as a program.

    python checkpoint_run.py OUT.jsonl CHECKPOINT SUBJECTS TICKS [--kill-at N] [--plain]

It resumes from CHECKPOINT when that file exists (and goes on checkpointing to it), else starts
afresh. ``--kill-at N`` sends the process SIGKILL at its N-th 'logout' event (a crash at an
exact moment of the run); ``--plain`` runs without checkpoints (the uninterrupted run).
"""

import sys
from pathlib import Path

from doge_datagen import FileSink
from doge_datagen.demo import banking_generator

# Run as a program: the tests' folder on the path, for the support package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.logouts import kill_at  # noqa: E402

#: Seconds between checkpoints: short, so that a kill finds one written moments before.
EVERY = 0.005
START = 1_700_000_000_000


def row(timestamp, subject, transition):
    return {
        "ts": timestamp,
        "user": subject.user_id,
        "event": transition.trigger,
        "balance": subject.balance,
        "loan": subject.loan_balance,
    }


def main(argv):
    out, saved, subjects, ticks = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    sink = FileSink(out, row)
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
        kill_at(datagen, int(argv[argv.index("--kill-at") + 1]))
    if "--plain" in argv:
        datagen.start()
        return
    resume = saved if saved.exists() else None
    summary = datagen.start(checkpoint=saved, checkpoint_every=EVERY, resume=resume)
    print("resumed" if resume is not None else "fresh", summary.ticks, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
