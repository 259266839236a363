"""The results modules import one another in one direction only (no import circles, even
lazy ones inside functions): report builds, plots draws, report_pages lays out, and the
types they share live in summary and records."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "joulebench" / "results"


def _imports(path: Path) -> set[str]:
    """Sibling modules of joulebench.results that ``path`` imports anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "joulebench.results":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("joulebench.results."):
                found.add(node.module.split(".")[2])
    return found & {p.stem for p in PACKAGE.glob("*.py")}


def test_no_import_circle_among_the_results_modules() -> None:
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        if module in done:
            return
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))
        done.add(module)

    for module in graph:
        visit(module, ())
    assert "report" not in graph["plots"] | graph["report_pages"]
