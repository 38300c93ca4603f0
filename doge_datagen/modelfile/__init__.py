"""Model files: a whole simulation (states, transitions, subjects, records, sinks, parameters
and profiles) described in YAML or JSON, and :func:`load`, which turns one into a
:class:`~doge_datagen.DataOnlineGenerator`.

- :mod:`.yamlmarks`: safe YAML parsing that keeps the line and column of every key and value
  and refuses tags that build Python objects, anchors and aliases;
- :mod:`.expressions`: the expression language (Python's expression syntax over an allow-list
  of node types and names), compiled once into Python functions;
- :mod:`.builder`: the checks (``FILE:LINE:COLUMN: message``) and the model they build;
- ``schema.json``: the JSON Schema of the format; :mod:`.starter`: the text of
  ``doge-datagen init``.

A file runs code of its own only through ``action:``, ``factory:`` and ``sink:`` entries that
name Python functions, and only when the caller trusts it (``trust=True``, ``--trust``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from doge_datagen.modelfile.builder import ModelFileError, load

__all__ = ["ModelFileError", "load"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from doge_datagen.modelfile import builder

        return getattr(builder, name)
    raise AttributeError(f"module 'doge_datagen.modelfile' has no attribute {name!r}")
