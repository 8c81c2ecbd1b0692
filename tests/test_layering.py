"""The dependency rule: imports point ``bot -> tools -> knowledge``; ``finetune`` is an island
that only ``bot`` (its CLI and the local backend) imports.

Read from the source (every import statement, including those inside functions), so a
lazy import that crosses a layer is caught as surely as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent

# Which of our packages each package may import (besides itself).
ALLOWED = {
    "bot": {"tools", "knowledge", "migrations", "finetune"},  # the finetune CLI, the local backend
    "tools": {"knowledge"},
    "knowledge": set(),
    "finetune": set(),
}


def _imported_packages(path: Path) -> set[str]:
    return _top_level_imports(path) & {*ALLOWED, "migrations"}


def _top_level_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package: str) -> None:
    crossings = [
        f"{path.relative_to(REPO)} imports {other}"
        for path in sorted((REPO / package).rglob("*.py"))
        for other in sorted(_imported_packages(path) - {package} - ALLOWED[package])
    ]
    assert not crossings, crossings


def test_the_rule_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bot.settings import Settings\n    return Settings\n")
    assert _imported_packages(module) == {"bot"}


# The ``integrations`` extra: the bot runs without it, so only these modules import it.
EXTRA_IMPORTERS = {
    "mcp": {"bot/mcp_server.py"},
    "mcp_types": {"bot/mcp_server.py"},
    "langchain_core": {"knowledge/langchain.py", "tools/langchain.py"},
}


def test_the_integrations_extra_is_imported_only_by_its_modules() -> None:
    importers: dict[str, set[str]] = {name: set() for name in EXTRA_IMPORTERS}
    for package in ALLOWED:
        for path in sorted((REPO / package).rglob("*.py")):
            for name in _top_level_imports(path) & set(EXTRA_IMPORTERS):
                importers[name].add(str(path.relative_to(REPO)))
    assert importers == EXTRA_IMPORTERS
