"""The house rules a newcomer relies on, checked on the source: import order, short functions, no name checks."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from au.detectors.registry import NAMES

SRC = Path(__file__).resolve().parents[1] / "src" / "au"

# A package may import only packages before it: the pipeline's order, with shared pieces first.
ORDER = [
    "errors",
    "checks",
    "files",
    "progress",
    "allocator",
    "jobs",
    "tables",
    "data",
    "models",
    "report",
    "train",
    "ablation",
    "curves",
    "activations",
    "spaces",
    "ood",
    "detectors",
    "score",
    "guarantees",
    "gold",
    "explain",
    "generate",
    "engines",
    "demo",
    "cli",
    "__main__",
]


def _modules() -> dict[str, ast.Module]:
    return {
        ".".join(path.relative_to(SRC.parent).with_suffix("").parts): ast.parse(path.read_text(), str(path))
        for path in sorted(SRC.rglob("*.py"))
    }


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(tree: ast.Module) -> set[str]:
    """Every ``au...`` module imported anywhere in the file, function-level imports included."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "au"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "au":
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_every_package_has_its_place_in_the_order():
    stages = {_stage(m) for m in _modules()} - {None, "__init__"}
    assert stages <= set(ORDER), f"place {sorted(stages - set(ORDER))} in ORDER"


def test_the_package_docstring_lists_every_stage():
    import au

    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()} - {"cli"}
    missing = sorted(p for p in packages if f"au.{p} " not in au.__doc__)
    assert not missing, f"au's docstring does not list {missing}"


def test_imports_only_run_down_the_pipeline():
    """No package imports one after it (so there is no circle, hidden in a function or not)."""
    bad = []
    for module, tree in _modules().items():
        mine = _stage(module)
        if mine in (None, "__init__"):
            continue
        for target in _imports(tree):
            theirs = _stage(target)
            if theirs in ORDER and ORDER.index(theirs) > ORDER.index(mine):
                bad.append(f"{module} imports {target}")
    assert not bad, "\n".join(sorted(bad))


def test_no_function_is_longer_than_80_lines():
    long = []
    for module, tree in _modules().items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 80:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("name", NAMES)
def test_no_detector_is_asked_for_by_name_outside_its_package(name):
    """Stages dispatch on what a detector consumes; only the registry spells names out."""
    uses = []
    for module, tree in _modules().items():
        if _stage(module) == "detectors":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value == name:
                uses.append(f"{module}: line {node.lineno}")
    assert not uses, f"{name!r} appears in " + ", ".join(uses)


def test_no_detector_class_is_imported_outside_its_package():
    """Stages build detectors through the registry (by name or by what they read), never from their modules."""
    from au.detectors.registry import _CLASSES

    classes = {path.split(":")[0] for path in _CLASSES.values()}
    uses = []
    for module, tree in _modules().items():
        if _stage(module) != "detectors":
            uses += [f"{module} imports {m}" for m in _imports(tree) if any(m.startswith(c) for c in classes)]
    assert not uses, "\n".join(sorted(uses))


def test_each_command_has_a_job_module_named_after_it():
    from au.cli import COMMANDS

    jobs = {p.stem for p in SRC.rglob("*_job.py")}
    listings = {"datasets", "models"}  # these commands list things; they run no job
    assert {f"{c}_job" for c in COMMANDS if c not in listings} <= jobs
    assert {p.stem for p in (SRC / "cli").glob("*_cmd.py")} == {f"{c}_cmd" for c in COMMANDS}


@pytest.mark.parametrize(
    "package",
    [
        "activations",
        "ablation",
        "curves",
        "demo",
        "detectors",
        "explain",
        "generate",
        "gold",
        "guarantees",
        "score",
        "train",
    ],
)
def test_every_lazily_exported_name_exists(package):
    """The stage packages import their names on first use; each one listed must be there."""
    import importlib

    module = importlib.import_module(f"au.{package}")
    for name in module.__all__:
        assert getattr(module, name) is not None, f"au.{package}.{name}"
