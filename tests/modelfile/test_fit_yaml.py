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


FIT = (
    "fit events.jsonl --tick-ms 60000 --subject user_id --timestamp timestamp "
    "--from-state from_state --to-state to_state --trigger event --subjects 300 "
    "--initial-state offline"
)


def test_fit_format_yaml_prints_a_model_file_that_reproduces_the_logs_trigger_counts(tmp_path):
    done = cli("demo", "--sink", "jsonl:events.jsonl", "--subjects", "300", "--ticks", "2000",
               "--seed", "5", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = cli(*FIT.split(), "--format", "yaml", cwd=tmp_path)
    assert printed.returncode == 0, printed.stderr
    # The model file alone on standard output, the table on standard error.
    assert printed.stdout.startswith("# A model fitted by doge-datagen")
    assert " rows, 300 subjects, " in printed.stderr
    assert " rows, 300 subjects, " not in printed.stdout
    (tmp_path / "printed.yaml").write_text(printed.stdout)
    # The same file from -o without a suffix, and from --output-format with the log's format.
    for extra in (["--format", "yaml", "-o", "fitted"],
                  ["--format", "jsonl", "--output-format", "yaml", "-o", "fitted2"]):  # fmt: skip
        done = cli(*FIT.split(), *extra, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / extra[-1]).read_text() == printed.stdout
    done = cli("run", "printed.yaml", "--seed", "6", "--sink", "events=jsonl:rerun.jsonl",
               cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr

    def counts(name: str) -> Counter:
        lines = (tmp_path / name).read_text().splitlines()
        return Counter(json.loads(line)["event"] for line in lines)

    log, rerun = counts("events.jsonl"), counts("rerun.jsonl")
    assert set(rerun) == set(log)
    for trigger, seen in log.items():
        assert abs(rerun[trigger] - seen) <= 5 * math.sqrt(2 * max(seen, 1)) + 2, (trigger, seen)


@pytest.mark.parametrize(
    "extra, said",
    [
        (["--format", "yaml", "-o", "model.py"], "names a Python module"),
        (["--output-format", "python", "-o", "model.yaml"], "names a model file"),
        (["--format", "yaml", "--output-format", "python"], "two formats"),
    ],
)
def test_fit_refuses_formats_that_disagree(tmp_path, extra, said):
    (tmp_path / "events.jsonl").write_text("")
    done = cli(*FIT.split(), *extra, cwd=tmp_path)
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.jsonl"]


def test_fit_without_an_output_format_still_writes_python(tmp_path):
    done = cli("demo", "--sink", "jsonl:events.jsonl", "--subjects", "50", "--ticks", "300",
               "--seed", "5", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = cli(*FIT.split(), "--format", "jsonl", "-o", "model.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "def build" in (tmp_path / "model.py").read_text()
    assert " rows, 300 subjects, " in done.stdout.splitlines()[0]  # the table, as before
