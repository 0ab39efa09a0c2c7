"""The package's conventions, checked over every module rather than module by module: one error
family (every refusal is a ``CrmError``), private names that stay private, and ``.ok`` /
``.message`` on every result."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import re
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


NOT_RESULTS = {"Headline", "Attention", "Action", "PaidLines", "DataGap", "Source", "Chunk", "RowError",
               "FutureSampler"}
"""Classes that public functions of analyses/ and ingest/ return but that are values, items or
descriptions rather than the result of an analysis or an import (FutureSampler: a source of
simulated draws, from which the results are taken)."""


def _returned_classes() -> dict[type, list[str]]:
    """Package classes named in the return annotation of a public function of analyses/ or ingest/."""
    returned: dict[type, list[str]] = {}
    for module in _modules():
        if not module.__name__.startswith(("crm_helpers.analyses.", "crm_helpers.ingest.")):
            continue
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            annotation = str(inspect.signature(function).return_annotation)
            for word in re.findall(r"\w+", annotation):
                cls = getattr(module, word, None)
                if inspect.isclass(cls) and cls.__module__.startswith("crm_helpers."):
                    returned.setdefault(cls, []).append(f"{module.__name__}.{name}")
    return returned


def _has(cls: type, name: str) -> bool:
    """``name`` is a property, attribute or dataclass field of ``cls``."""
    return hasattr(cls, name) or (dataclasses.is_dataclass(cls) and name in {f.name for f in dataclasses.fields(cls)})


def test_every_result_says_ok_and_message():
    """No result is said one way: ``.ok`` (the analysis or import produced its result) and
    ``.message`` (plain words; empty when ok and nothing to say), on every result type."""
    returned = _returned_classes()
    results = [cls for cls in returned if cls.__name__ not in NOT_RESULTS]
    assert {cls.__name__ for cls in results} >= {"ClvAnalysis", "SalesForecast", "FollowUpQueue",
                                                 "ImportResult", "SourceImportResult"}
    missing = [f"{cls.__name__} (from {returned[cls][0]})" for cls in results
               if not (_has(cls, "ok") and _has(cls, "message"))]
    assert missing == [], "give these results .ok and .message, or list them in NOT_RESULTS with why"


def test_an_import_result_says_what_was_left_out():
    from crm_helpers.ingest.table_import import ImportResult

    result = ImportResult("customers", Path("c.csv"), rejected=2, rejects_path=Path("c.rejects.csv"))
    assert result.ok and result.message == "2 bad rows were left out; their reasons are in c.rejects.csv"
    assert ImportResult("customers", Path("c.csv")).message == ""


ARRAYS = {"frequency", "recency", "T", "monetary_value", "expected_value", "t"}
"""The BTYD arrays, which stay positional in lifetimes' order (``fit(frequency, recency, T)``,
``expected_purchases(t, frequency, recency, T)``) the way scikit-learn keeps ``fit(X, y)``: one
customer per position in every array, so they cannot be swapped for a setting."""

def _public_callables() -> list[tuple[str, object]]:
    """Every public function of the package and every hand-written public method (``__init__``
    included) of its public classes. Dataclass-made ``__init__`` (records built field by field)
    and exception constructors (message parts) are left out."""
    found = []
    for module in _modules():
        for name, obj in inspect.getmembers(module):
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                found.append((f"{module.__name__}.{name}", obj))
            elif inspect.isclass(obj) and not issubclass(obj, BaseException):
                for attr, member in vars(obj).items():
                    function = getattr(member, "__func__", member)
                    if (inspect.isfunction(function) and (attr == "__init__" or not attr.startswith("_"))
                            and function.__code__.co_filename != "<string>"):  # dataclass-made __init__
                        found.append((f"{module.__name__}.{name}.{attr}", function))
    return found


def test_parameters_after_the_first_two_are_keyword_only():
    """``f(db, as_of, *, ...)``: a third argument is named, so two settings cannot be swapped."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    offenders = []
    for name, function in _public_callables():
        params = [p.name for p in inspect.signature(function).parameters.values() if p.kind in positional]
        if params and params[0] in ("self", "cls"):
            params = params[1:]
        extra = [p for p in params[2:] if p not in ARRAYS]
        if extra:
            offenders.append(f"{name}({', '.join(params)})")
    assert offenders == [], "make the parameters after the first two keyword-only:\n" + "\n".join(offenders)


def _analysis_functions(name: str) -> dict[str, object]:
    """``name`` of every analysis module that offers it, by module."""
    import crm_helpers.analyses as analyses

    found = {}
    for info in pkgutil.iter_modules(analyses.__path__, prefix="crm_helpers.analyses."):
        function = getattr(importlib.import_module(info.name), name, None)
        if function is not None:
            found[info.name] = function
    return found


def _signature_head(function: object, size: int) -> list[tuple[str, object, object]]:
    """The first ``size`` parameters of ``function``: (name, kind, default)."""
    return [(p.name, p.kind, p.default) for p in list(inspect.signature(function).parameters.values())[:size]]


def test_every_analysis_hands_the_index_its_figures_flags_and_actions_with_one_signature():
    """``headline_figures(db, *, period, previous=None, **settings) -> list[Headline]``,
    ``attention_items(db, *, period, **settings) -> list[Attention]`` and
    ``actions(db, *, period, **settings) -> list[Action]`` in every analysis offering them, settings
    keyword-only with defaults, so the notebooks call them all alike and the signatures cannot drift
    apart again (issues 25 and 27)."""
    empty, positional, keyword = inspect.Parameter.empty, inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    figures, flags = _analysis_functions("headline_figures"), _analysis_functions("attention_items")
    actions = _analysis_functions("actions")
    assert {f"crm_helpers.analyses.{name}" for name in ("segmentation", "clv", "romi", "satisfaction", "service",
                                                         "lead_scoring", "quality")} <= set(actions)
    assert len(figures) >= 8 and {"crm_helpers.analyses.quality", "crm_helpers.analyses.romi",
                                  "crm_helpers.analyses.sales"} <= set(flags)
    for functions, head, returns in (
        (figures, [("db", positional, empty), ("period", keyword, empty), ("previous", keyword, None)], "Headline"),
        (flags, [("db", positional, empty), ("period", keyword, empty)], "Attention"),
        (actions, [("db", positional, empty), ("period", keyword, empty)], "Action"),
    ):
        for module, function in functions.items():
            signature = inspect.signature(function)
            assert _signature_head(function, len(head)) == head, f"{module}.{function.__name__}{signature}"
            settings = list(signature.parameters.values())[len(head):]
            assert all(p.kind == keyword and p.default is not empty for p in settings), f"{module}{signature}"
            assert signature.return_annotation == f"list[{returns}]", f"{module}{signature}"
