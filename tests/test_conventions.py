"""The package's conventions, checked over every module rather than module by module: one error
family (every refusal is a ``CrmError``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
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
