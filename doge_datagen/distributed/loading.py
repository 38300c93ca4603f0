"""A model's build function found by name: ``"package.module:function"`` or
``"path/to/file.py:function"``.

One loader serves the command line (``doge-datagen run``, ``graph``, ``analyze``), the shards
of a sharded run and the workers' server that forks them (:mod:`doge_datagen.process_server`).
That the three load a name the same way is what lets the server load a model file once, before
any shard starts, and every shard forked from it find the file already loaded.

A file is loaded as a script's imports expect: its directory is put at the front of
``sys.path`` (so it can import the modules beside it), and the module is registered in
``sys.modules`` before it runs (so that dataclasses and pickling find it), under the name
``_doge_build_STEM``. A process loads a file once: later names of the same file get the same
module, as ``import`` does for a module name.
"""

import importlib
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any, Callable, Dict, List, Tuple

from doge_datagen.errors import ConfigurationError

__all__ = ["is_file", "load_function", "load_module", "loaded", "module_of"]

# What this process has loaded by name, in order: modules' names and files' absolute paths.
_LOADED: Dict[str, None] = {}


def loaded() -> List[str]:
    """The modules (by name) and files (by absolute path) that :func:`load_module` has loaded
    in this process: what a workers' server started later should load too, for shards that
    build the same models (:mod:`doge_datagen.process_server`)."""
    return list(_LOADED)


def is_file(module_part: str) -> bool:
    """Whether the part of a name before ``:`` names a file (``x.py``, or a path) rather than
    an importable module."""
    return module_part.endswith(".py") or os.sep in module_part


def module_of(spec: str) -> str:
    """What ``spec`` loads the function from, as a process can find it again: a module's name,
    or a file's absolute path ("" for a name without one)."""
    module_part = spec.rpartition(":")[0]
    return os.path.abspath(module_part) if module_part and is_file(module_part) else module_part


def split_name(spec: str) -> Tuple[str, str]:
    """``(module or file, function)`` of ``spec``; ConfigurationError when it is not one."""
    module_part, sep, function_name = spec.rpartition(":")
    if not sep or not module_part or not function_name:
        raise ConfigurationError(
            f"{spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION, e.g. my_models:build"
        )
    return module_part, function_name


def load_module(module_part: str) -> ModuleType:
    """The module named by ``module_part``: a file (see the module's docstring) or a module
    name, imported. ConfigurationError names a file that does not exist or a module that cannot
    be imported; an error raised by the module's own code propagates as it is."""
    if not is_file(module_part):
        try:
            imported = importlib.import_module(module_part)
        except ModuleNotFoundError as exc:
            raise ConfigurationError(f"cannot import module {module_part!r} ({exc})") from exc
        _LOADED[module_part] = None
        return imported
    path = os.path.abspath(module_part)
    if not os.path.isfile(path):
        raise ConfigurationError(f"no file {module_part!r}")
    name = "_doge_build_" + os.path.splitext(os.path.basename(path))[0]
    module = sys.modules.get(name)
    if module is not None and getattr(module, "__file__", None) == path:
        return module
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None and module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]  # a file that failed is loaded again next time, not half-made
        raise
    _LOADED[path] = None
    return module


def load_function(spec: str) -> Callable[..., Any]:
    """The function named by ``spec`` (``"module:function"`` or ``"file.py:function"``)."""
    module_part, function_name = split_name(spec)
    try:
        module = load_module(module_part)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{spec!r}: {exc}") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigurationError(f"{spec!r}: {module_part!r} has no function {function_name!r}")
    return function
