"""A model file is data: escapes and denial-of-service attempts are refused when the file is
checked, before any sink is made, and nothing is written."""

import os
from pathlib import Path

import pytest

import doge_datagen
from doge_datagen.modelfile import ModelFileError

BANKING = (Path(__file__).resolve().parents[2] / "examples" / "banking.yaml").read_text()


def _model(out: Path, replace: str = "", by: str = "", extra: str = "") -> str:
    text = BANKING.replace("jsonl:out/", f"jsonl:{out}/")
    text = text.replace(
        "  clickstream:\n    url: jsonl",
        f"  db:\n    url: sqlite:///{out}/events.db\n  clickstream:\n    url: jsonl",
    )
    if replace:
        assert replace in text, replace
        text = text.replace(replace, by, 1)
    return text + extra


WHEN = "when: payment <= balance"
LET = "payment: randint(10, 500)"
SUBJECT = "balance: randint(0, 1000)"
DO = "- balance -= payment"
RECORD = "record: {timestamp: timestamp, user_id: user_id, event: trigger}"

# (place, replaced by): each an escape or an unbounded expression.
ATTEMPTS = [
    (WHEN, "when: __import__('os').system('touch pwned')"),
    (WHEN, "when: ().__class__.__bases__[0].__subclasses__()"),
    (WHEN, "when: balance.__class__"),
    (WHEN, "when: balance._secret"),
    (WHEN, "when: _dg.random"),
    (WHEN, "when: _rng"),
    (WHEN, "when: '(lambda: 1)()'"),
    (WHEN, "when: '[x for x in range(10**9)]'"),
    (WHEN, "when: '{x for x in [1]}'"),
    (WHEN, "when: sum(x for x in [1])"),
    (WHEN, "when: 10**10**10"),
    (WHEN, "when: \"'x' * 10**12\""),
    (WHEN, "when: '[0] * 10**12'"),
    (WHEN, "when: '[[0] * 1000] * 1000'"),
    (WHEN, "when: \"'%0999999d' % 1\""),
    (WHEN, "when: \"'%*d' % (10**9, 1)\""),
    (WHEN, "when: \"f'{balance:0999999999}'\""),
    (WHEN, "when: 1 << 10**9"),
    (WHEN, "when: math.factorial(10**7)"),
    (WHEN, "when: math.__dict__"),
    (WHEN, "when: open('/etc/passwd')"),
    (WHEN, "when: eval('1')"),
    (WHEN, "when: exec('x=1')"),
    (WHEN, "when: getattr(balance, 'real')"),
    (WHEN, "when: globals()"),
    (WHEN, "when: vars()"),
    (WHEN, "when: __builtins__"),
    (WHEN, "when: compile('1', 'f', 'eval')"),
    (WHEN, "when: \"'{0.__class__}'.format(1)\""),
    (WHEN, "when: randint.__self__"),
    (WHEN, "when: (y := 1)"),
    (WHEN, "when: '*[1]'"),
    (WHEN, "when: subject"),
    (WHEN, "when: transition.action_callback"),
    (WHEN, "when: '" + "(" * 300 + "1" + ")" * 300 + "'"),
    (WHEN, "when: '" + "-" * 200 + "1'"),
    (WHEN, "when: '" + "1+" * 6000 + "1'"),
    (LET, "payment: __import__('subprocess')"),
    (LET, "payment: str.mro()"),
    (SUBJECT, "balance: 2**1000000"),
    (SUBJECT, "balance: open"),
    (DO, "- balance = exec"),
    (DO, "- subject.balance = 1"),
    (DO, "- balance, loan_balance = 1, 2"),
    (DO, "- import os"),
    (DO, "- balance **= 10**10**10"),
    (RECORD, "record: {timestamp: timestamp, user_id: user_id.__class__}"),
    (RECORD, "record: {timestamp: __import__('os').getcwd()}"),
    ("subjects: 10", "subjects: 10**10**10"),
    ("subjects: 10", "subjects: !!python/object/apply:os.system ['touch pwned']"),
    ("subjects: 10", "subjects: !!python/name:os.system"),
    ("subjects: 10", "subjects: !!python/object/new:os.system ['ls']"),
    ("subjects: 10", "subjects: !!binary aGk="),
    ("subjects: 10", "subjects: &a 10\nseed: *a"),
    ("name: banking", "name: !!python/object:builtins.object {}"),
    ("name: banking", "name: banking\nfactory: os:system"),
    ("- {trigger: logout, from: online, to: offline, probability: 70}",
     "- {trigger: logout, from: online, to: offline, probability: 70, action: 'os:system'}"),
    ("  clickstream:\n    url: jsonl", "  clickstream:\n    sink: 'os:system'\n    url: jsonl"),
]  # fmt: skip


@pytest.mark.parametrize("replace, by", ATTEMPTS, ids=[by[:40] for _, by in ATTEMPTS])
def test_an_escape_or_unbounded_expression_is_refused_before_any_sink(
    tmp_path, monkeypatch, replace, by
):
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    text = _model(out, replace, by)
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(text)
    message = str(refused.value)
    assert message.startswith("<model>:"), message
    line = int(message.split(":")[1])
    assert 1 <= line <= text.count("\n") + 1
    assert os.listdir(out) == []
    assert not (tmp_path / "pwned").exists()


def test_there_are_at_least_thirty_attempts():
    assert len(ATTEMPTS) >= 30


def test_the_unchanged_model_loads_and_runs_into_its_files(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    datagen = doge_datagen.load(_model(out), seed=1, subjects=20)
    summary = datagen.start()
    assert summary.events > 0
    # The database sink, which no transition names, is never opened: it makes no file.
    assert sorted(os.listdir(out)) == [
        "balance.jsonl", "clickstream.jsonl", "loan.jsonl", "trx.jsonl",
    ]  # fmt: skip


def test_python_references_run_only_when_trusted(tmp_path):
    text = _model(
        tmp_path,
        "- {trigger: logout, from: online, to: offline, probability: 70}",
        "- {trigger: logout, from: online, to: offline, probability: 70,\n"
        "    action: 'tests.support.modelfile_models:refuse_logout'}",
    )
    with pytest.raises(ModelFileError, match=r"^<model>:\d+:\d+: .*names Python code.*--trust"):
        doge_datagen.load(text)
    datagen = doge_datagen.load(text, trust=True, seed=3, subjects=30, ticks=3000)
    summary = datagen.start()
    assert summary.events_per_trigger.get("logout", 0) == 0
    assert summary.events_per_trigger["login"] > 0


def test_an_expression_that_grows_at_run_time_stops_the_run_with_a_clear_error(tmp_path):
    text = _model(tmp_path, LET, "payment: randint(10, 500) ** 100000")
    datagen = doge_datagen.load(text, seed=1, subjects=50, ticks=5000)
    with pytest.raises(Exception, match="expressions are bounded"):
        datagen.start()
