"""Griffe extension of the API reference (mkdocs.yml): the names a module exports lazily are
its members there.

A module of doge-datagen that resolves the names of its ``__all__`` on first use (a PEP 562
``__getattr__``, as ``doge_datagen.distributed`` does) has none of them as a member for static
analysis, so the reference would show it empty. For each such module this imports it, reads
each missing name, and adds it as an alias of the object it resolves to: a class or function
by its ``__module__`` and ``__qualname__``, anything else by the one module of the package that
defines that name. A name that cannot be read (a missing optional client) is left out.
"""

import importlib
from typing import Any, List, Optional

from griffe import Alias, Extension, Module


def _modules(module: Module) -> List[Module]:
    found = [module]
    for sub in module.modules.values():
        if not sub.is_alias:
            found.extend(_modules(sub))
    return found


def _defined_in(package: Module, name: str) -> Optional[str]:
    paths = [
        m.members[name].path
        for m in _modules(package)
        if name in m.members and not m.members[name].is_alias
    ]
    return paths[0] if len(paths) == 1 else None


class LazyExports(Extension):
    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        for module in _modules(pkg):
            if "__getattr__" not in module.members:
                continue
            try:
                runtime = importlib.import_module(module.path)
            except Exception:
                continue
            for name in getattr(runtime, "__all__", ()):
                if name in module.members:
                    continue
                try:
                    value = getattr(runtime, name)
                except Exception:
                    continue
                owner = getattr(value, "__module__", None)
                qualname = getattr(value, "__qualname__", None)
                if isinstance(owner, str) and isinstance(qualname, str) and "<" not in qualname:
                    target: Optional[str] = f"{owner}.{qualname}"
                else:
                    target = _defined_in(module, name)
                if target and target != f"{module.path}.{name}":
                    module.set_member(name, Alias(name, target, parent=module))
