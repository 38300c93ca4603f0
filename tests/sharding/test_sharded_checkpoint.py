"""Sharded runs that checkpoint per shard and resume with the same shard count: each shard's
JSON Lines part ends up byte for byte the uninterrupted sharded run's, after a stop, and after
a SIGKILL of the whole command; another shard count, a missing shard's file, a checkpoint of
a run in one process and another model are refused before any shard starts."""

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional, Tuple

import pytest
from support import shard_models, sharded_checkpoint_models

from doge_datagen.core.shards import part_path, split
from doge_datagen.distributed.sharded import checkpoint_parts, run_sharded, stored_run_options
from doge_datagen.errors import ConfigurationError, ShardError

ROOT = Path(__file__).resolve().parents[2]
ARGV = ("--subjects", "300", "--ticks", "1440", "--seed", "5")


def parts(path: Path, count: int, subjects: int = 300) -> List[bytes]:
    return [part_path(path, shard).read_bytes() for shard in split(subjects, count)]


def build(path: Path, *argv: str) -> Any:
    return functools.partial(shard_models.demo, "--sink", f"jsonl:{path}", *argv)


def stopping(path: Path, stops: Tuple[Optional[int], ...], *argv: str) -> Any:
    return functools.partial(
        sharded_checkpoint_models.stopping, stops, "--sink", f"jsonl:{path}", *argv
    )


@pytest.mark.parametrize("count", [2, 3])
def test_a_stopped_sharded_run_resumed_writes_the_uninterrupted_runs_parts(tmp_path, count):
    whole, out, saved = tmp_path / "whole.jsonl", tmp_path / "ev.jsonl", tmp_path / "run.ckpt"
    run_sharded(build(whole, *ARGV), shards=count)
    stops = tuple(50 + 20 * k for k in range(count))
    stopped = run_sharded(stopping(out, stops, *ARGV), shards=count, checkpoint=saved)
    assert sorted(checkpoint_parts(saved)) == [count]
    assert sorted(checkpoint_parts(saved)[count]) == list(range(count))
    # Every shard stopped at a logout of its own, short of the end.
    assert all(part.stopped for part in stopped.shards)
    assert all(a != b and b.startswith(a) for a, b in zip(parts(out, count), parts(whole, count)))
    resumed = run_sharded(build(out, *ARGV), shards=count, resume=saved, checkpoint=saved)
    assert parts(out, count) == parts(whole, count)
    assert resumed.events == sum(p.count(b"\n") for p in parts(whole, count))
    # A checkpoint written at the end resumes to no new event; the parts stay as they are.
    again = run_sharded(build(out, *ARGV), shards=count, resume=saved)
    assert parts(out, count) == parts(whole, count)
    assert again.events == resumed.events


def test_a_shard_resumes_from_its_own_checkpoint_while_the_other_had_finished(tmp_path):
    """Only shard 0 stops early: shard 1's checkpoint is the one of its end, and its part is
    left as it is."""
    whole, out, saved = tmp_path / "whole.jsonl", tmp_path / "ev.jsonl", tmp_path / "run.ckpt"
    run_sharded(build(whole, *ARGV), shards=2)
    stopped = run_sharded(stopping(out, (40, None), *ARGV), shards=2, checkpoint=saved)
    assert [part.stopped for part in stopped.shards] == [True, False]
    first, second = parts(out, 2)
    assert first != parts(whole, 2)[0] and second == parts(whole, 2)[1]
    run_sharded(build(out, *ARGV), shards=2, resume=saved)
    assert parts(out, 2) == parts(whole, 2)


def demo_command(*argv: str, group: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "doge_datagen", "demo", "--no-progress", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=group,  # its own process group, as a terminal's job has
    )


def test_the_command_killed_with_its_workers_resumes_with_resume(tmp_path):
    """``demo --workers 2 --checkpoint`` killed with SIGKILL to its whole process group
    (coordinator and shards, no checkpoint at the stop) twice, once the shards' checkpoints
    are there, then resumed with ``--resume`` to the end: every part is the uninterrupted
    run's. The killed runs are paced (about 3 s), so the kills come during the run; the last
    one and the reference run at full speed (pacing changes when events are written, not
    which)."""
    out, whole, saved = tmp_path / "ev.jsonl", tmp_path / "whole.jsonl", tmp_path / "run.ckpt"
    argv = ["--workers", "2", "--subjects", "400", "--ticks", "1440"]
    files = [part_path(saved, shard) for shard in split(400, 2)]
    for n in range(2):
        resume = ["--resume", str(saved)] if n else []
        before = [f.stat().st_mtime_ns if f.exists() else 0 for f in files]
        proc = demo_command(
            *argv,
            "--speed",
            "28800",
            "--sink",
            f"jsonl:{out}",
            "--checkpoint",
            str(saved),
            "--checkpoint-every",
            "0.2",
            *resume,
            group=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
            f.exists() and f.stat().st_mtime_ns != b for f, b in zip(files, before)
        ):
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err
    stored = stored_run_options(saved)  # an unseeded demo: the seed its checkpoint holds
    same = ["--seed", str(stored["seed"]), "--timestamp-start", str(stored["timestamp_start"])]
    proc = demo_command(*argv, *same, "--sink", f"jsonl:{whole}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert all(part.count(b"\n") > 100 for part in parts(whole, 2, 400))
    assert parts(out, 2, 400) != parts(whole, 2, 400)  # killed mid-run
    proc = demo_command(*argv, "--sink", f"jsonl:{out}", "--resume", str(saved))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert parts(out, 2, 400) == parts(whole, 2, 400)


def test_sigterm_to_the_command_writes_each_shards_last_checkpoint_for_resume(tmp_path):
    """SIGTERM to the coordinator of ``demo --workers 3 --checkpoint`` (checkpoints only at the
    stop): every shard stops gracefully and writes its checkpoint there, and ``--resume``
    finishes the run with the uninterrupted run's parts."""
    out, whole, saved = tmp_path / "ev.jsonl", tmp_path / "whole.jsonl", tmp_path / "run.ckpt"
    argv = ["--workers", "3", "--subjects", "300", "--ticks", "1440", "--seed", "4"]
    data = [part_path(out, shard) for shard in split(300, 3)]
    proc = demo_command(
        *argv, "--speed", "14400", "--sink", f"jsonl:{out}", "--checkpoint", str(saved),
        "--checkpoint-every", "1000",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(p.exists() and p.stat().st_size for p in data):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert sorted(checkpoint_parts(saved)[3]) == [0, 1, 2]
    proc = demo_command(*argv, "--sink", f"jsonl:{whole}")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert parts(out, 3) != parts(whole, 3)  # stopped mid-run
    proc = demo_command(*argv, "--sink", f"jsonl:{out}", "--resume", str(saved))
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert parts(out, 3) == parts(whole, 3)


# -- what is refused ----------------------------------------------------------------------------


@pytest.fixture
def two_shards(tmp_path) -> Path:
    """A checkpoint of a 2-shard run stopped early, and its parts."""
    saved = tmp_path / "run.ckpt"
    run_sharded(stopping(tmp_path / "ev.jsonl", (30, 50), *ARGV), shards=2, checkpoint=saved)
    return saved


def test_a_resume_with_another_shard_count_is_refused(tmp_path, two_shards):
    before = parts(tmp_path / "ev.jsonl", 2)
    with pytest.raises(ConfigurationError) as caught:
        run_sharded(build(tmp_path / "ev.jsonl", *ARGV), shards=3, resume=two_shards)
    message = str(caught.value)
    assert "run of 2 shards ('run-00000-of-00002.ckpt', 'run-00001-of-00002.ckpt')" in message
    assert "this run has 3 shards: resume with the shard count that wrote it (shards=2" in message
    assert parts(tmp_path / "ev.jsonl", 2) == before  # nothing started, nothing cut back
    assert not list(tmp_path.glob("ev-*-of-00003.jsonl"))


def test_a_missing_shards_file_is_refused(tmp_path, two_shards):
    part_path(two_shards, split(300, 2)[1]).unlink()
    before = parts(tmp_path / "ev.jsonl", 2)
    with pytest.raises(ConfigurationError, match=r"lacks the file of shard 1 \('run-00001-of-"):
        run_sharded(build(tmp_path / "ev.jsonl", *ARGV), shards=2, resume=two_shards)
    assert parts(tmp_path / "ev.jsonl", 2) == before


def test_a_checkpoint_of_one_process_or_none_is_refused(tmp_path):
    single = tmp_path / "single.ckpt"
    shard_models.demo("--sink", f"jsonl:{tmp_path / 's.jsonl'}", *ARGV).start(checkpoint=single)
    with pytest.raises(ConfigurationError, match="written by a run in one process"):
        run_sharded(build(tmp_path / "ev.jsonl", *ARGV), shards=2, resume=single)
    with pytest.raises(ConfigurationError, match="no checkpoint of a sharded run at .*none.ckpt"):
        run_sharded(build(tmp_path / "ev.jsonl", *ARGV), shards=2, resume=tmp_path / "none.ckpt")
    with pytest.raises(ConfigurationError, match="force applies to resume"):
        run_sharded(build(tmp_path / "ev.jsonl", *ARGV), shards=2, force=True)
    with pytest.raises(ConfigurationError, match="checkpoint_every must be a positive number"):
        run_sharded(build(tmp_path / "ev.jsonl"), shards=2, checkpoint=single, checkpoint_every=0)
    with pytest.raises(ConfigurationError, match="no directory"):
        run_sharded(build(tmp_path / "ev.jsonl"), shards=2, checkpoint=tmp_path / "x" / "r.ckpt")
    assert not list(tmp_path.glob("ev*"))


def test_another_model_is_refused_naming_what_differs_unless_forced(tmp_path, two_shards):
    other = ("--subjects", "300", "--ticks", "1440", "--seed", "6")
    with pytest.raises(ShardError) as caught:
        run_sharded(build(tmp_path / "ev.jsonl", *other), shards=2, resume=two_shards)
    assert "seed: '5' -> '6'" in str(caught.value)
    assert isinstance(caught.value.__cause__, ConfigurationError)
    summary = run_sharded(
        build(tmp_path / "ev.jsonl", *other), shards=2, resume=two_shards, force=True
    )
    assert not summary.stopped and summary.events > 0


def test_the_command_resumes_a_sharded_checkpoint_and_refuses_another_count(tmp_path, capsys):
    from doge_datagen.cli.main import main

    out, saved = tmp_path / "ev.jsonl", tmp_path / "run.ckpt"
    demo = ["demo", "--subjects", "60", "--ticks", "100", "--sink", f"jsonl:{out}"]
    assert main([*demo, "--workers", "2", "--checkpoint", str(saved)]) == 0
    assert sorted(checkpoint_parts(saved)[2]) == [0, 1]
    capsys.readouterr()
    assert main([*demo, "--workers", "3", "--resume", str(saved)]) != 0
    assert "this run has 3 shards" in capsys.readouterr().err
    assert main([*demo, "--workers", "2", "--resume", str(saved)]) == 0


def test_a_world_whose_shards_exchange_messages_refuses_checkpoints(tmp_path):
    from support import world_models

    world = functools.partial(world_models.payments, str(tmp_path))
    for option in ("checkpoint", "resume"):
        with pytest.raises(ConfigurationError, match="checkpoints of a world are not supported"):
            run_sharded(world, shards=2, **{option: tmp_path / "run.ckpt"})
    assert list(tmp_path.iterdir()) == []


# -- on Dask ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_cluster() -> Iterator[str]:
    """A LocalCluster of two one-thread worker processes; its scheduler's address."""
    import distributed  # the [dask] extra, part of [test]

    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.mark.slow
def test_a_stopped_run_on_dask_resumed_writes_the_uninterrupted_runs_parts(tmp_path, local_cluster):
    whole, out, saved = tmp_path / "whole.jsonl", tmp_path / "ev.jsonl", tmp_path / "run.ckpt"
    dask = {"backend": "dask", "address": local_cluster}
    run_sharded(build(whole, *ARGV), shards=2, **dask)
    stopped = run_sharded(stopping(out, (50, 70), *ARGV), shards=2, checkpoint=saved, **dask)
    assert [part.stopped for part in stopped.shards] == [True, True]
    assert all(a != b for a, b in zip(parts(out, 2), parts(whole, 2)))
    run_sharded(build(out, *ARGV), shards=2, resume=saved, checkpoint=saved, **dask)
    assert parts(out, 2) == parts(whole, 2)
