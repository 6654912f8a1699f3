"""Section 3: import time of each handler module, the part of a cold start the code controls.

Each function's ``app.py`` is imported by a fresh interpreter under ``-X importtime`` with the
function's directory as cwd and the core layer on PYTHONPATH (how Lambda lays them out).
Bytecode goes to a throw-away PYTHONPYCACHEPREFIX, warmed by one discarded pass, so nothing
is written into the repository and every measured run reads cached bytecode.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench import report
from bench.env import AWS_ENV, CORE_LAYER, ROOT, SERVICE_ENV, TEMPLATE

RUNS = 3
HEAVY = ("PIL", "numpy", "scipy", "imagehash")  # only the ImagingLayer ships these
_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


@dataclass(frozen=True)
class Handler:
    logical_id: str
    directory: Path
    imaging_layer: bool


@dataclass
class Node:
    """One line of -X importtime output, with the modules it imported first."""

    name: str
    self_us: int
    cumulative_us: int
    children: list[Node] = field(default_factory=list)


@dataclass
class ImportRun:
    total_us: int  # cumulative of the root `app` line
    modules: set[str]
    app: Node


def _tree(lines: list[str]) -> list[Node]:
    """The import tree; importtime prints children (deeper indent) before their parent."""
    pending: dict[int, list[Node]] = {}
    for line in lines:
        match = _LINE.match(line)
        if not match:
            continue
        own, cumulative, indent, name = match.groups()
        depth = len(indent) // 2
        node = Node(name, int(own), int(cumulative), pending.pop(depth + 1, []))
        pending.setdefault(depth, []).append(node)
    return pending.get(0, [])


@dataclass
class Result:
    handler: Handler
    runs: list[ImportRun] = field(default_factory=list)


def handlers() -> list[Handler]:
    """The template's functions, and whether each has the ImagingLayer."""
    from local_stack.cfn import load_template

    out = []
    for logical_id, resource in load_template(TEMPLATE)["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        layers = props.get("Layers") or []
        imaging = any(isinstance(x, dict) and x.get("Ref") == "ImagingLayer" for x in layers)
        out.append(Handler(logical_id, (ROOT / props["CodeUri"]).resolve(), imaging))
    return out


def _env(pycache: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(CORE_LAYER),
        "PYTHONPYCACHEPREFIX": pycache,
        **AWS_ENV,
        **SERVICE_ENV,
    }


def _import_once(handler: Handler, pycache: str) -> ImportRun:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import app"],
        cwd=handler.directory,
        env=_env(pycache),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{handler.directory.name}: import app failed: {tail[0]}")
    lines = proc.stderr.splitlines()
    modules = {m.group(4) for m in map(_LINE.match, lines) if m}
    app = next((node for node in _tree(lines) if node.name == "app"), None)
    if app is None:
        raise RuntimeError(f"{handler.directory.name}: no `app` line in -X importtime output")
    return ImportRun(app.cumulative_us, modules, app)


def _heavy(modules: set[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY})


def reachable_imports(app_file: Path) -> set[str]:
    """Top-level packages app.py can import, following imgsvc imports inside functions too.

    -X importtime sees only module-level imports; a lazy ``from imgsvc.imaging import ...``
    inside a function runs later, on a request, and fails there if the layer is missing.
    """
    seen: set[Path] = set()
    found: set[str] = set()
    todo = [app_file]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                # `from imgsvc import records` names a module; `from x import y` a package.
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "imgsvc":
                    todo.append(CORE_LAYER.joinpath(*name.split(".")).with_suffix(".py"))
                else:
                    found.add(name.split(".")[0])
    return found


def run() -> bool:
    """Print the table; True when a function without the imaging layer imports PIL/numpy."""
    targets = handlers()
    results = {h.logical_id: Result(h) for h in targets}
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache:
        # Warm-up pass (discarded): compiles every module into the fresh bytecode cache.
        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(lambda h: _import_once(h, pycache), targets))
        # Measured passes one function at a time, interleaved so drift hits all alike.
        for _ in range(RUNS):
            for h in targets:
                results[h.logical_id].runs.append(_import_once(h, pycache))

    ordered = sorted(results.values(), key=lambda r: report.median([x.total_us for x in r.runs]))
    rows = []
    problems: list[str] = []
    for result in ordered:
        h = result.handler
        totals = [x.total_us / 1e6 for x in result.runs]
        imported = _heavy(set().union(*(x.modules for x in result.runs)))
        lazy = sorted(set(HEAVY) & reachable_imports(h.directory / "app.py"))
        if not h.imaging_layer and imported:
            problems.append(f"{h.directory.name} imports {', '.join(imported)} at import time")
        if not h.imaging_layer and lazy:
            problems.append(f"{h.directory.name} can reach {', '.join(lazy)} (lazy imports)")
        rows.append(
            [
                h.directory.name,
                "yes" if h.imaging_layer else "no",
                report.ms(report.median(totals)),
                report.ms(min(totals)),
                report.ms(max(totals)),
                len(result.runs[0].modules),
                ", ".join(imported) or "-",
                ", ".join(lazy) or "-",
            ]
        )
    report.note(
        f"python -X importtime -c 'import app', cwd functions/<dir>, PYTHONPATH=core layer; "
        f"median of {RUNS} runs (the cumulative time of the root `app` line)."
    )
    report.table(
        [
            "function",
            "imaging layer",
            "median",
            "min",
            "max",
            "modules",
            "imports heavy",
            "reachable lazily",
        ],
        rows,
        "llrrrrll",
    )
    # GET /status needs nothing but the HTTP glue: what it imports, every function pays.
    floor = next((r for r in ordered if r.handler.directory.name == "status"), ordered[0])
    _print_tree(floor.handler.directory.name, floor)
    for problem in problems:
        report.warning(f"{problem}, but that function has no ImagingLayer")
    if not problems:
        report.note(
            "OK: no function without the ImagingLayer imports or can reach " + "/".join(HEAVY) + "."
        )
    return bool(problems)


def _print_tree(name: str, result: Result, min_share: float = 0.08, max_depth: int = 5) -> None:
    """Where the time goes: the import subtrees of the median run above min_share of it.

    A module shared by several packages is charged to whichever imported it first.
    """
    run = sorted(result.runs, key=lambda r: r.total_us)[len(result.runs) // 2]
    report.note(
        f"Where {name}'s {report.ms(run.total_us / 1e6)} go (subtrees over "
        f"{min_share:.0%}, cumulative / self):"
    )

    def visit(node: Node, depth: int) -> None:
        share = node.cumulative_us / run.total_us
        if share < min_share or depth > max_depth:
            return
        print(
            f"    {'  ' * depth}{node.name:<{44 - 2 * depth}} "
            f"{report.ms(node.cumulative_us / 1e6):>8} {share:>4.0%}  "
            f"self {report.ms(node.self_us / 1e6)}"
        )
        for child in sorted(node.children, key=lambda c: -c.cumulative_us):
            visit(child, depth + 1)

    visit(run.app, 0)
