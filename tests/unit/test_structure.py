"""The domain package's shape: no import cycles, and the HTTP glue stays out of domain code."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "layers" / "core" / "python" / "imgsvc"


def imports_of(path: Path) -> set[str]:
    """Every imgsvc module this file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("imgsvc"):
            if node.module == "imgsvc":
                found.update(a.name for a in node.names if (PACKAGE / f"{a.name}.py").exists())
            else:
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("imgsvc."))
    return found


def graph() -> dict[str, set[str]]:
    return {p.stem: imports_of(p) - {p.stem} for p in PACKAGE.glob("*.py") if p.stem != "__init__"}


def test_the_import_graph_is_built_from_real_imports() -> None:
    g = graph()
    assert "records" in g["ingest"] and "aws" in g["records"]  # the walk sees both forms


def test_no_import_cycles() -> None:
    g = graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(g.get(node, ())):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif len(path) < len(g):
                visit(nxt, [*path, nxt])

    for start in sorted(g):
        visit(start, [start])
    assert cycles == []


def test_domain_modules_never_import_the_http_glue() -> None:
    glue = {"http"}
    users = {m for m, deps in graph().items() if deps & glue}
    assert users == set(), users


def test_the_domain_matches_image_ids_exactly() -> None:
    import pytest

    from imgsvc.catalog import parse_image_id
    from imgsvc.errors import BadRequest

    good = "a" * 64
    assert parse_image_id(good) == good
    for loose in (good + "\n", good.upper(), good[:-1], " " + good):
        with pytest.raises(BadRequest):
            parse_image_id(loose)
