"""Modules loaded on first use, so that a function's cold start pays only for what it runs.

Every Lambda function of the app imports ``app.py`` and with it every blueprint; a blueprint that
imported its services at module level would make the webhook function load the KPI rules and the
queue functions load the inbox. Blueprints and ``app.py`` bind their services with ``lazy_module``
instead (and import them normally under ``TYPE_CHECKING``, so mypy still checks every call)::

    if TYPE_CHECKING:
        from chalicelib.services import inbox
    else:
        inbox = lazy_module("chalicelib.services.inbox")
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Optional


class _LazyModule:
    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: Optional[ModuleType] = None

    def __getattr__(self, attribute: str) -> Any:
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        state = "loaded" if self._module is not None else "not loaded yet"
        return f"<lazy module {self._name!r}, {state}>"


def lazy_module(name: str) -> Any:
    """A stand-in for module ``name`` that imports it on the first attribute read."""
    return _LazyModule(name)
