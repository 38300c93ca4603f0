"""``doge-datagen fit ... -o model.yaml`` writes a model file that runs and reproduces the
log's trigger counts."""

import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest


def cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doge_datagen", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("hourly", [False, True])
def test_a_fitted_model_file_reproduces_the_logs_trigger_counts(tmp_path, hourly):
    done = cli("demo", "--day", "--sink", "jsonl:events.jsonl", "--subjects", "500", "--ticks",
               "2880", "--seed", "1", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    fit = "fit events.jsonl --tick-ms 60000 --subject user_id --timestamp timestamp "
    fit += "--from-state from_state --to-state to_state --trigger event --subjects 500 "
    fit += "--initial-state offline -o model.yaml"
    done = cli(*fit.split(), *(["--hourly"] if hourly else []), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "model.yaml").read_text()
    assert text.startswith("# A model fitted by doge-datagen")
    assert ("hourly: [" in text) == hourly
    done = cli("run", "model.yaml", "--seed", "2", "--sink", "events=jsonl:rerun.jsonl",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr

    def counts(name: str) -> Counter:
        lines = (tmp_path / name).read_text().splitlines()
        return Counter(json.loads(line)["event"] for line in lines)

    log, rerun = counts("events.jsonl"), counts("rerun.jsonl")
    assert set(rerun) == set(log)
    for trigger, seen in log.items():
        # Two independent Poisson-like counts of one mean: their difference within 5 sigma.
        assert abs(rerun[trigger] - seen) <= 5 * math.sqrt(2 * max(seen, 1)) + 2, (trigger, seen)
    first = json.loads((tmp_path / "rerun.jsonl").read_text().splitlines()[0])
    assert set(first) == {"timestamp", "user_id", "event", "from_state", "to_state"}
