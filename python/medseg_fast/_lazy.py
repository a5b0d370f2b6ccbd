"""Package names that live in submodules, imported on first use (PEP 562 ``__getattr__``).

``medseg_fast.monai`` and ``medseg_fast.torchio`` use it so that importing them (or ``medseg_fast``)
does not import the peer library until one of its drop-ins is used.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: dict[str, str],
                 namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for `package`, whose name ``n`` lives in ``package.where[n]``;
    a name found is cached in the package's `namespace` (its ``globals()``)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
