"""A model's build function found by name (``doge_datagen.loading``): one loader for the
command line, the shards and the workers' server."""

import os
import sys

import pytest

from doge_datagen.distributed import loading
from doge_datagen.distributed.sharded import load_build
from doge_datagen.errors import ConfigurationError

MODEL = """
import beside  # a module next to this file
loads = getattr(beside, "loads", 0) + 1
beside.loads = loads


def build():
    return beside.VALUE
"""


@pytest.fixture
def model_file(tmp_path, monkeypatch):
    (tmp_path / "beside.py").write_text("VALUE = 42\n")
    path = tmp_path / "my_model.py"
    path.write_text(MODEL)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield path
    for name in ("beside", "_doge_build_my_model"):
        sys.modules.pop(name, None)


def test_a_file_imports_the_modules_beside_it_and_is_loaded_once(model_file):
    first = loading.load_function(f"{model_file}:build")
    assert first() == 42
    assert load_build(f"{model_file}:build") is first  # the shards' name for the same loader
    module = sys.modules["_doge_build_my_model"]
    assert module.loads == 1  # run once in this process, as an imported module is
    assert str(model_file.parent) in sys.path


def test_a_file_that_fails_is_loaded_again_next_time(model_file):
    model_file.write_text("raise RuntimeError('not yet')\n")
    with pytest.raises(RuntimeError, match="not yet"):
        loading.load_function(f"{model_file}:build")
    assert "_doge_build_my_model" not in sys.modules
    model_file.write_text(MODEL)
    assert loading.load_function(f"{model_file}:build")() == 42


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("no_colon", ["'no_colon'", "MODULE:FUNCTION"]),
        ("no_such_module_xyz:build", ["no_such_module_xyz", "cannot import"]),
        ("/no/such/dir/model.py:build", ["no file", "/no/such/dir/model.py"]),
        ("json:no_such_function", ["'json'", "no function 'no_such_function'"]),
    ],
)
def test_a_bad_name_is_refused_naming_what_is_wrong(spec, words):
    with pytest.raises(ConfigurationError) as raised:
        loading.load_function(spec)
    for word in words:
        assert word in str(raised.value)


def test_a_name_gives_its_module_or_its_file_as_a_path_another_process_finds():
    assert loading.module_of("my_models.banking:build") == "my_models.banking"
    assert loading.module_of("models/bank.py:build") == os.path.abspath("models/bank.py")
    assert loading.module_of("no_module_part") == ""
