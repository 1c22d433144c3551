"""Which part may import which (docs/architecture.md, "Import rules"), checked over the source.

Every import counts: at the top of a module, inside functions, under `if TYPE_CHECKING:`,
relative ones, and `importlib.import_module("...")` / `__import__("...")` with a literal name.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PARTS = ("common", "sfu", "control", "recorder", "loadtest")
# part -> the parts it must not import
FORBIDDEN = {
    "common": {"sfu", "control", "recorder", "loadtest"},
    "sfu": {"control", "recorder", "loadtest"},
    "recorder": {"control", "loadtest"},
    "control": {"loadtest"},
    "loadtest": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_in_source(
    source: str, module: str, *, is_package: bool = False
) -> list[tuple[int, str]]:
    """(line, imported module) for every import in `source`, the source of `module`."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, `level - 1` steps up
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            if node.module is None:  # `from . import x`: x may be a module
                found.extend(
                    (node.lineno, f"{name}.{alias.name}".strip(".")) for alias in node.names
                )
            else:
                found.append((node.lineno, name))
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else None
            if isinstance(function, ast.Name):
                called = function.id
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
                if isinstance(first.value, str):
                    found.append((node.lineno, first.value))
    return found


def imports_of_part(part: str) -> list[tuple[str, int, str]]:
    """(file, line, imported module) for every import in the part's Python files."""
    found: list[tuple[str, int, str]] = []
    for path in sorted((ROOT / part).rglob("*.py")):
        module = _module_name(path)
        for line, name in imports_in_source(
            path.read_text(), module, is_package=path.name == "__init__.py"
        ):
            found.append((str(path.relative_to(ROOT)), line, name))
    return found


def broken_rules(part: str) -> list[str]:
    return [
        f"{file}:{line} imports {name}"
        for file, line, name in imports_of_part(part)
        if name.split(".")[0] in FORBIDDEN[part]
    ]


def imported_modules(package: str) -> set[str]:
    return {name for _file, _line, name in imports_of_part(package)}


@pytest.mark.parametrize("part", PARTS)
def test_a_part_imports_none_of_the_parts_it_must_not(part):
    broken = broken_rules(part)
    assert not broken, f"{part} must not import {sorted(FORBIDDEN[part])}:\n" + "\n".join(broken)


def test_every_part_has_a_rule_and_every_rule_names_parts():
    assert set(FORBIDDEN) == set(PARTS)
    assert all(forbidden <= set(PARTS) for forbidden in FORBIDDEN.values())
    assert all((ROOT / part / "__init__.py").is_file() for part in PARTS)


def test_imports_inside_functions_type_checking_blocks_and_relative_ones_are_seen():
    source = """
from typing import TYPE_CHECKING
import sfu.rtp
if TYPE_CHECKING:
    from control.config import Settings
def later():
    from loadtest.media import load_media
    import importlib
    importlib.import_module("recorder.export")
    return __import__("control.cli")
from . import session
from .writer import SegmentWriter
from ..control import app
"""
    names = [name for _line, name in imports_in_source(source, "recorder.bench")]
    assert names.count("control.config") == 1
    assert "loadtest.media" in names
    assert "recorder.export" in names
    assert "control.cli" in names
    assert "recorder.session" in names
    assert "recorder.writer" in names
    assert "control" in names  # from ..control import app
    assert "sfu.rtp" in names


def test_a_forbidden_import_inside_a_function_breaks_the_rule(tmp_path, monkeypatch):
    part = tmp_path / "recorder"
    part.mkdir()
    (part / "__init__.py").write_text("")
    (part / "late.py").write_text("def f():\n    from control.config import Settings\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert broken_rules("recorder") == ["recorder/late.py:2 imports control.config"]


def test_the_sfu_does_not_import_the_control_plane():
    assert not [m for m in imported_modules("sfu") if m.split(".")[0] == "control"]


def _top_level_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_the_shared_helpers_are_defined_once_in_common():
    shared = {
        name
        for path in (ROOT / "common").glob("*.py")
        for name in _top_level_functions(path)
        if not name.startswith("_")
    }
    assert {"free_port", "free_udp_port", "write_atomic", "die_with_parent"} <= shared
    copies = [
        f"{path.relative_to(ROOT)} defines {name}"
        for folder in ("sfu", "control", "recorder", "loadtest", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in sorted(_top_level_functions(path) & shared)
    ]
    assert copies == []


def test_only_the_adapter_touches_aiortc_and_aioice():
    for path in (ROOT / "sfu").rglob("*.py"):
        if path.name == "aiortc_adapter.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("aiortc", "aioice"), (path.name, name)
