"""Errors a person can act on: ``FILE:LINE:COLUMN: message``, one line, nothing written."""

import os
from pathlib import Path

import pytest

import doge_datagen
from doge_datagen.errors import ConfigurationError
from doge_datagen.modelfile import ModelFileError

BANKING = (Path(__file__).resolve().parents[2] / "examples" / "banking.yaml").read_text()


def _refused(tmp_path: Path, replace: str, by: str) -> ModelFileError:
    out = tmp_path / "out"
    out.mkdir()
    text = BANKING.replace("jsonl:out/", f"jsonl:{out}/")
    assert replace in text, replace
    path = tmp_path / "model.yaml"
    path.write_text(text.replace(replace, by, 1))
    with pytest.raises(ModelFileError) as refused:
        doge_datagen.load(str(path))
    assert os.listdir(out) == []
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:"), message
    return refused.value


def test_an_unknown_name_is_placed_with_a_suggestion(tmp_path):
    error = _refused(tmp_path, "when: payment <= balance", "when: payment <= balnce")
    assert str(error) == (
        f"{tmp_path / 'model.yaml'}:29:11: transition 'spending': unknown name 'balnce' in "
        "when (did you mean 'balance'?)"
    )
    assert (error.line, error.column) == (29, 11)


def test_an_unknown_key_is_placed_with_a_suggestion(tmp_path):
    error = _refused(tmp_path, "    probability: 0.1\n    let:", "    probablity: 0.1\n    let:")
    assert error.message == "transition: unknown key 'probablity' (did you mean 'probability'?)"
    assert (error.line, error.column) == (26, 5)


def test_an_unknown_top_level_key(tmp_path):
    error = _refused(tmp_path, "ticks: 1000", "tick_count: 1000")
    assert error.message == "model: unknown key 'tick_count'"
    assert (error.line, error.column) == (10, 1)


def test_a_wrong_type(tmp_path):
    error = _refused(tmp_path, "subjects: 10", "subjects: [10]")
    assert error.message == "subjects must be a number, got a list"
    assert (error.line, error.column) == (8, 11)


def test_a_wrong_type_of_section(tmp_path):
    error = _refused(tmp_path, "states: [offline, online, loan_screen]", "states: offline")
    assert error.message == "states must be a list, got a string"
    assert (error.line, error.column) == (6, 9)


def test_an_unknown_state(tmp_path):
    error = _refused(tmp_path, "to: loan_screen, probability", "to: loan_scren, probability")
    assert error.message == (
        "transition 'open_loan_screen': to: unknown state 'loan_scren' (did you mean "
        "'loan_screen'?)"
    )
    assert error.line == 35


def test_a_probability_above_100(tmp_path):
    error = _refused(tmp_path, "probability: 70}", "probability: 170}")
    assert error.message == "transition 'logout': probability 170 is above 100 (percent per tick)"
    assert error.line == 34


def test_probabilities_adding_up_above_100(tmp_path):
    error = _refused(tmp_path, "probability: 30, sinks", "probability: 31, sinks")
    assert error.message == "the probabilities leaving 'online' add up to 101, above 100"
    assert error.line == 35


def test_a_profile_above_100_names_the_first_hour(tmp_path):
    hours = ", ".join(["1"] * 9 + ["200"] + ["1"] * 14)
    error = _refused(
        tmp_path,
        "probability: 30, sinks",
        "probability: {base: 20, hourly: [" + hours + "]}, sinks",
    )
    assert error.message.startswith("the probabilities leaving 'online' add up to 4070 percent")
    assert "09:00" in error.message
    assert error.line == 35


def test_an_undefined_sink(tmp_path):
    error = _refused(tmp_path, "sinks: [trx, balance]", "sinks: [trx, balanse]")
    assert error.message == (
        "transition 'spending': undefined sink 'balanse' (did you mean 'balance'?)"
    )
    assert (error.line, error.column) == (32, 18)


def test_do_assigning_a_name_that_is_not_an_attribute(tmp_path):
    error = _refused(tmp_path, "- balance -= payment", "- balanc -= payment")
    assert error.message == (
        "transition 'spending': 'do' assigns to 'balanc', which is not an attribute in do "
        "(did you mean 'balance'?)"
    )
    assert (error.line, error.column) == (31, 9)


def test_a_yaml_syntax_error_is_placed(tmp_path):
    error = _refused(tmp_path, "ticks: 1000", "ticks: [1000")
    assert error.message.startswith("not valid YAML")
    assert error.line is not None and error.line >= 10


def test_an_unknown_parameter_override_is_refused_with_a_suggestion():
    text = BANKING.replace("subjects: 10", "params: {users: 10}\nsubjects: users")
    assert doge_datagen.load(text).subjects_num == 10
    assert doge_datagen.load(text, params={"users": "25"}).subjects_num == 25
    assert doge_datagen.load(text, users=30).subjects_num == 30
    with pytest.raises(ConfigurationError, match=r"no parameter 'user' \(did you mean 'users'\?\)"):
        doge_datagen.load(text, params={"user": 5})
