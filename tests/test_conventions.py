"""The package's conventions, checked over every module rather than module by module: one error
family (every refusal is a ``CrmError``) and private names that stay private."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path
from types import ModuleType

import crm_helpers
from crm_helpers.errors import CrmError


def _modules() -> list[ModuleType]:
    """Every module of the package, imported."""
    return [importlib.import_module(info.name)
            for info in pkgutil.walk_packages(crm_helpers.__path__, prefix="crm_helpers.")]


def _defined_here(module: ModuleType) -> list[type]:
    """The classes ``module`` defines itself (not those it imports)."""
    return [obj for _, obj in inspect.getmembers(module, inspect.isclass) if obj.__module__ == module.__name__]


def test_every_exception_of_the_package_is_a_crm_error():
    exceptions = [cls for module in _modules() for cls in _defined_here(module)
                  if issubclass(cls, BaseException) and not issubclass(cls, Warning)]
    assert len(exceptions) >= 16, "the walk found too few exception classes to be walking the package"
    outside = [f"{cls.__module__}.{cls.__qualname__}" for cls in exceptions if not issubclass(cls, CrmError)]
    assert outside == [], f"derive these from crm_helpers.errors.CrmError: {outside}"


SRC = Path(crm_helpers.__file__).parent
NAMEDTUPLE_API = {"_asdict", "_replace", "_fields", "_make"}
"""Underscore names that are public API (namedtuple's), not private ones."""


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in NAMEDTUPLE_API


def test_no_module_uses_another_modules_private_names():
    """Private names stay private: what another module needs is public (or lives there).

    Caught: ``from x import _name``, and ``something._name`` on anything but ``self`` / ``cls``
    (another module's private function, or another class's private method).
    """
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(SRC)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.ImportFrom):
                found += [f"{where} imports {node.module}.{a.name}" for a in node.names if _private(a.name)]
            elif (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                  and node.value.id not in ("self", "cls")):
                found.append(f"{where} uses {node.value.id}.{node.attr}")
    assert found == []
