"""A checkpointing run killed with SIGKILL, again and again, and resumed each time from its last
checkpoint: the JSON Lines file it leaves is byte for byte the uninterrupted run's.

The kills come at seeded moments of the run: at the N-th 'logout' event of a process (the
process sends itself SIGKILL there, an exact moment of the simulated run, wherever the last
checkpoint was written), and from outside, after a seeded delay (wherever the process was,
checkpoint writing included). Each process resumes from the checkpoint its predecessor left,
or starts afresh when none was written yet.
"""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.logouts import stop_at

SCRIPT = Path(__file__).resolve().parents[1] / "support" / "checkpoint_run.py"
SUBJECTS, TICKS = "20000", "1500"


def launch(out: Path, saved: Path, *extra: str, pure: str = "") -> subprocess.Popen:
    """The run as a process of its own; ``pure="1"`` keeps it in the Python loop."""
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), str(out), str(saved), SUBJECTS, TICKS, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, DOGE_DATAGEN_PURE_PYTHON=pure),
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("whole") / "events.jsonl"
    proc = launch(out, out.with_suffix(".ckpt"), "--plain")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out.read_bytes()


def finish(out: Path, saved: Path, pure: str = "") -> str:
    """Resume to the end; what the last process printed."""
    proc = launch(out, saved, pure=pure)
    printed, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return printed


@pytest.mark.parametrize("pure", ["", "1"], ids=["c-loop", "python-loop"])
@pytest.mark.parametrize("trial", range(2))
def test_sigkill_at_seeded_events_then_resumed_each_time(tmp_path, uninterrupted, trial, pure):
    rng = random.Random(trial)
    out, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    for _ in range(5):
        proc = launch(out, saved, "--kill-at", str(rng.randint(1000, 4000)), pure=pure)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == -signal.SIGKILL, err
    assert saved.exists()  # the kills came after checkpoints, not all before the first
    assert out.read_bytes() != uninterrupted
    assert finish(out, saved, pure).startswith("resumed 1500")
    assert out.read_bytes() == uninterrupted


@pytest.mark.parametrize("trial", range(3))
def test_sigkill_and_sigterm_from_outside_at_seeded_delays(tmp_path, uninterrupted, trial):
    rng = random.Random(100 + trial)
    out, saved = tmp_path / "events.jsonl", tmp_path / "run.ckpt"
    for n in range(6):
        proc = launch(out, saved)
        time.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGTERM if n == 5 else signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
        # Killed, or done before the signal came: either way a file and a checkpoint that
        # agree.
        assert proc.returncode in (0, -signal.SIGKILL, -signal.SIGTERM), err
    finish(out, saved)
    assert out.read_bytes() == uninterrupted
    # A temporary file a kill left half-written is removed by the run after.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl", "run.ckpt"]


def test_a_redis_stream_with_explicit_ids_holds_each_event_once_after_resumes(tmp_path, redis_url):
    """A run stopped with a checkpoint, resumed, failing after it had sent more entries (no
    checkpoint since), and resumed from the same checkpoint: the stream holds exactly the
    uninterrupted run's entries, ids included; the entries sent again were refused."""
    import uuid

    import redis

    from doge_datagen.demo import banking_generator
    from doge_datagen.sinks.redis_stream import RedisStreamSinkFactory

    client = redis.Redis.from_url(redis_url)
    streams = [f"doge-resume-{uuid.uuid4().hex[:8]}-{which}" for which in ("whole", "resumed")]

    def build(stream, stop=None, error=None):
        sink = RedisStreamSinkFactory(redis_url).create(
            stream,
            None,
            lambda ts, s, t: {"user": s.user_id, "event": t.trigger, "balance": s.balance},
            batch_size=20,
            explicit_ids=True,
            name="redis:events",
        )
        datagen = banking_generator(
            sink, sink, sink, sink, subjects_num=500, ticks_num=600, seed=3, timestamp_start=0
        )
        stop_at(datagen, stop, error)
        return datagen, sink

    saved = tmp_path / "run.ckpt"
    try:
        build(streams[0])[0].start()
        datagen, _ = build(streams[1], stop=30)
        datagen.start(checkpoint=saved)
        datagen, sink = build(streams[1], stop=40, error=RuntimeError("gone"))
        with pytest.raises(RuntimeError, match="gone"):
            datagen.start(resume=saved)
        assert sink.delivered > 0  # entries past the checkpoint reached the stream
        datagen, sink = build(streams[1])
        datagen.start(resume=saved)
        assert sink.repeated > 0 and sink.failed == 0
        whole, resumed = (client.xrange(stream) for stream in streams)
        assert len(whole) > 100
        assert resumed == whole
    finally:
        client.delete(*streams)
        client.close()


def demo(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", "--subjects", "2000", "--ticks", "3000"]
        + list(args),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("seeded", [True, False], ids=["seeded", "unseeded"])
def test_the_demo_command_killed_and_resumed_with_resume(tmp_path, seeded):
    """``doge-datagen demo --checkpoint`` killed at seeded delays and resumed each time with
    ``--resume`` (and ``--checkpoint``): its file is the uninterrupted run's. An unseeded demo
    resumes with the seed and start its checkpoint holds. The killed runs are paced (3 s a
    run), so that the kills come during the run; the last one and the reference run at full
    speed (pacing changes when events are written, not which)."""
    from doge_datagen.engine.checkpoint import run_options

    rng = random.Random(7 if seeded else 8)
    out, whole, saved = tmp_path / "events.jsonl", tmp_path / "whole.jsonl", tmp_path / "run.ckpt"
    seed = ["--seed", "9"] if seeded else []
    for _ in range(4):
        resume = ["--resume", str(saved)] if saved.exists() else []
        proc = demo(
            "--speed",
            "60000",
            *seed,
            "--sink",
            f"jsonl:{out}",
            "--checkpoint",
            str(saved),
            *resume,
            "--checkpoint-every",
            "0.2",
        )
        time.sleep(rng.uniform(0.4, 2.5))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=600)
        assert proc.returncode in (0, -signal.SIGKILL), err
    proc = demo(*seed, "--sink", f"jsonl:{out}", "--checkpoint", str(saved), "--resume", str(saved))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    stored = run_options(saved)
    same = ["--seed", str(stored["seed"]), "--timestamp-start", str(stored["timestamp_start"])]
    proc = demo(*same, "--sink", f"jsonl:{whole}")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    assert out.read_bytes() == whole.read_bytes()
    if seeded:
        assert stored["seed"] == 9
