"""Section 4: cold start against a baseline, and what layer bytecode saves.

A fresh interpreter per measurement (cwd functions/<dir>, the core layer on PYTHONPATH, as
Lambda lays them out) times ``import app`` and then the first ``lambda_handler`` call with a
real request, against a moto server and a photo server on 127.0.0.1, so work moved from
import to the first request (lazy PIL/numpy, boto3 clients) is counted. The baseline, timed
the same way in the same run, is ``import boto3`` plus one client: what any Python function
that talks to DynamoDB pays before doing anything.

Budgets (issue 7): import <= baseline + 120 ms without the ImagingLayer, + 220 ms with it.

Bytecode: Lambda cannot write .pyc files into /opt, so unless the layers ship bytecode every
cold start compiles every layer module. Three bytecode caches (PYTHONPYCACHEPREFIX, never
written during a measured run) give GET /status's import with no bytecode anywhere, with
bytecode for everything but the layers' packages (Lambda with layers built without it),
and with bytecode for everything (layers built with it). This interpreter's bytecode stands
in for python3.13's, unless BENCH_BYTECODE_PYTHON names another interpreter with the
RuntimeLayer's packages installed (e.g. a python3.13 venv made for the measurement).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import report
from bench.analyze import PHOTO, photo_server
from bench.env import BUCKET, CORE_LAYER, PHOTOS, REGION, ROOT, TABLE, TEMPLATE
from bench.imports import Handler, handlers
from bench.imports import _env as import_env

RUNS = 5
BUDGET_MS = {False: 120.0, True: 220.0}  # over the baseline, by "has the ImagingLayer"

_PROBE = """
import json, sys, time
event = json.loads(sys.stdin.read())
start = time.perf_counter()
import app
imported = time.perf_counter()

class Context:
    function_name = "bench"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 30000

response = app.lambda_handler(event, Context())
done = time.perf_counter()
status = response.get("statusCode") if isinstance(response, dict) else None
print(json.dumps({"import": imported - start, "first": done - imported, "status": status,
                  "xray": "aws_xray_sdk" in sys.modules,
                  "heavy": sorted({m.split(".")[0] for m in sys.modules} & {"PIL", "numpy"})}))
"""

_IMPORT_ONLY = """
import sys, time
start = time.perf_counter()
import app
print(time.perf_counter() - start)
"""

_BASELINE = """
import time
start = time.perf_counter()
import boto3
boto3.client("dynamodb")
print(time.perf_counter() - start)
"""


@dataclass
class Sample:
    imports: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    statuses: set[Any] = field(default_factory=set)
    xray: bool = False
    heavy: set[str] = field(default_factory=set)


def _run(
    code: str, cwd: Path, env: dict[str, str], stdin: str = "", python: str = sys.executable
) -> str:
    proc = subprocess.run(
        [python, "-c", code],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{cwd.name}: probe failed: {tail[0]}")
    return proc.stdout.strip().splitlines()[-1]


# ------------------------------------------------------------------------------ requests


def api_event(method: str, path: str, body: Any = None, query: dict[str, str] | None = None):
    """A REST API proxy event (events/api_request.json) for this method, path and body."""
    event = json.loads((ROOT / "events" / "api_request.json").read_text())
    event.update(
        httpMethod=method,
        path=path,
        resource=path,
        queryStringParameters=query,
        multiValueQueryStringParameters={k: [v] for k, v in (query or {}).items()} or None,
        body=None if body is None else json.dumps(body),
    )
    event["requestContext"].update(httpMethod=method, path=f"/prod{path}")
    return event


class Fixtures:
    """What the first requests need: a stored image, photo URLs, fresh upload objects."""

    def __init__(self, photo_url: str) -> None:
        from imgsvc.ingest import ingest_bytes

        self.photo_url = photo_url
        self.data = (PHOTOS / PHOTO).read_bytes()
        image, _ = ingest_bytes(self.data, filename=PHOTO)
        self.image_id = image["image_id"]
        self.count = 0

    def _upload_event(self) -> dict[str, Any]:
        from imgsvc import aws, uploads

        session = uploads.create_upload(
            uploads.CreateUploadRequest.model_validate(
                {"files": [{"filename": PHOTO, "content_type": "image/jpeg", "size": 35180}]}
            )
        )
        key = f"uploads/{session['upload_id']}/{PHOTO}"
        aws.s3().put_object(Bucket=BUCKET, Key=key, Body=self.data)
        record = {"s3": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 35180}}}
        return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Post", **record}]}

    def event(self, name: str) -> dict[str, Any] | None:
        """The first request of functions/<name>, or None when the bench has none for it."""
        self.count += 1
        image = f"/images/{self.image_id}"
        url = f"{self.photo_url}?run={self.count}"  # a new URL: an analysis cache miss
        events: dict[str, Callable[[], dict[str, Any]]] = {
            "status": lambda: api_event("GET", "/status"),
            "history": lambda: api_event("GET", "/history"),
            "stats": lambda: api_event("GET", "/stats"),
            "images": lambda: api_event("GET", image),
            "diff": lambda: api_event("GET", f"{image}/diff/{self.image_id}"),
            "similar": lambda: api_event("GET", f"{image}/similar"),
            "uploads": lambda: api_event(
                "POST",
                "/uploads",
                {"files": [{"filename": "a.jpg", "content_type": "image/jpeg", "size": 1000}]},
            ),
            "analyze": lambda: api_event("POST", "/analyze", {"image_url": url}),
            "import_image": lambda: api_event("POST", "/images", {"url": url}),
            "crop": lambda: api_event(
                "POST", f"{image}/crop", {"left": 0, "top": 0, "right": 64, "bottom": 48}
            ),
            "ascii": lambda: api_event("GET", f"{image}/ascii", query={"width": "60"}),
            # a new width each run: the first request of a rendition renders it
            "rendition": lambda: api_event(
                "GET", f"{image}/rendition", query={"width": str(160 + self.count % 200)}
            ),
            "ingest": self._upload_event,
        }
        make = events.get(name)
        return make() if make else None


@contextmanager
def moto_server_stack() -> Iterator[str]:
    """A moto server on 127.0.0.1 with the template's table and bucket; this process's
    imgsvc clients point at it while the block runs. Yields its URL."""
    import boto3

    from imgsvc import aws
    from local_stack.resources import create_from_template
    from local_stack.stack import MotoServer

    # werkzeug logs every request to stderr unless its logger has a level already.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = MotoServer(0)
    server.start()
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = server.url
    aws.reset()
    try:
        session = boto3.Session(region_name=REGION)
        create_from_template(
            TEMPLATE,
            dynamodb=session.client("dynamodb"),
            s3=session.client("s3"),
            table_name=TABLE,
            bucket_name=BUCKET,
            region=REGION,
        )
        yield server.url
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        aws.reset()
        server.stop()


# ------------------------------------------------------------------------------ section


def _ms(values: list[float]) -> str:
    return report.ms(report.median(values)) if values else "n/a"


def run() -> bool:
    """Print the tables; True when a function misses its budget or imports the X-Ray SDK."""
    targets = handlers()
    samples = {h.logical_id: Sample() for h in targets}
    traced = Sample()
    baseline: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-pycache-") as pycache,
        moto_server_stack() as endpoint,
        photo_server() as photos,
    ):
        fixtures = Fixtures(photos.url(PHOTO))
        env = {**import_env(pycache), "AWS_ENDPOINT_URL": endpoint}
        env.pop("TRACING_ENABLED", None)  # the template's default: off

        def probe(h: Handler, extra: dict[str, str] | None = None) -> dict[str, Any] | None:
            event = fixtures.event(h.directory.name)
            if event is None:
                return None
            out = _run(_PROBE, h.directory, {**env, **(extra or {})}, json.dumps(event))
            return json.loads(out)

        status = next(h for h in targets if h.directory.name == "status")
        traced_env = {"TRACING_ENABLED": "true"}
        # Warm-up pass (discarded): compiles everything into the fresh bytecode cache.
        for h in targets:
            probe(h)
        probe(status, traced_env)
        _run(_BASELINE, status.directory, env)
        for _ in range(RUNS):  # interleaved, so drift hits all alike
            baseline.append(float(_run(_BASELINE, status.directory, env)))
            for h in targets:
                result = probe(h)
                sample = samples[h.logical_id]
                if result is None:
                    sample.imports.append(float(_run(_IMPORT_ONLY, h.directory, env)))
                    continue
                sample.imports.append(result["import"])
                sample.firsts.append(result["first"])
                sample.statuses.add(result["status"])
                sample.xray |= result["xray"]
                sample.heavy |= set(result["heavy"])
            # Traced import, with the Tracer disabled (no X-Ray daemon here): it still imports
            # the SDK, but patches nothing, so Lambda's traced cold start is a little longer.
            result = probe(status, traced_env)
            if result:
                traced.imports.append(result["import"])
                traced.firsts.append(result["first"])
                traced.xray |= result["xray"]

        problems = _report(targets, samples, traced, baseline)
        _bytecode(status.directory, pycache, env)
    for problem in problems:
        report.warning(problem)
    return bool(problems)


def _paired_ms(values: list[float], baseline: list[float]) -> float:
    """Median of value - baseline per round, in ms (both lists hold one entry per round)."""
    return report.median([v - b for v, b in zip(values, baseline, strict=True)]) * 1e3


def _report(
    targets: list[Handler], samples: dict[str, Sample], traced: Sample, baseline: list[float]
) -> list[str]:
    base, base_min = report.median(baseline), min(baseline)
    report.note(
        f"Fresh interpreter per run, {RUNS} runs; time.perf_counter around `import app` "
        "and around the first lambda_handler call (a real request against a moto server on "
        "127.0.0.1: boto3 clients are created there). Baseline: `import boto3; "
        f"boto3.client('dynamodb')` = {report.ms(base)} median, {report.ms(base_min)} min. "
        "Times and ratios are medians; `over base` is the median of each round's difference "
        "with the baseline measured at the start of that round (paired, so load that drifts "
        "between rounds cancels), judged against the budget. Tracing off (the default) unless "
        "marked."
    )
    rows, problems = [], []
    ordered = sorted(targets, key=lambda h: report.median(samples[h.logical_id].imports))
    for h in ordered:
        s = samples[h.logical_id]
        imp = report.median(s.imports)
        over = _paired_ms(s.imports, baseline)
        verdict = "ok" if over <= BUDGET_MS[h.imaging_layer] else "OVER"
        if verdict != "ok":
            problems.append(
                f"{h.directory.name}: import is {over:.0f} ms over the baseline (median of "
                f"paired rounds), budget {BUDGET_MS[h.imaging_layer]:.0f} ms"
            )
        if s.xray:
            problems.append(f"{h.directory.name} imported aws_xray_sdk with tracing off")
        bad = sorted(str(x) for x in s.statuses if x is not None and not 200 <= x < 400)
        if bad:
            problems.append(f"{h.directory.name}: first request answered {', '.join(bad)}")
        first = report.median(s.firsts) if s.firsts else None
        rows.append(
            [
                h.directory.name,
                "yes" if h.imaging_layer else "no",
                report.ms(imp),
                report.ms(min(s.imports)),
                report.ratio(imp, base),
                f"{over:+.0f} ms",
                f"+{BUDGET_MS[h.imaging_layer]:.0f} ms",
                verdict,
                _ms(s.firsts),
                report.ms(imp + first) if first is not None else "n/a",
                report.ratio(imp + first, base) if first is not None else "n/a",
                ", ".join(sorted(s.heavy)) or "-",
            ]
        )
    if traced.imports:
        imp, first = report.median(traced.imports), report.median(traced.firsts)
        rows.append(
            [
                "status Tracing=true",
                "no",
                report.ms(imp),
                report.ms(min(traced.imports)),
                report.ratio(imp, base),
                f"{_paired_ms(traced.imports, baseline):+.0f} ms",
                "",
                "",
                report.ms(first),
                report.ms(imp + first),
                report.ratio(imp + first, base),
                "xray" if traced.xray else "-",
            ]
        )
    report.table(
        [
            "function",
            "imaging",
            "import",
            "min",
            "/ base",
            "over base",
            "budget",
            "",
            "1st call",
            "import+1st",
            "/ base",
            "loaded by 1st",
        ],
        rows,
        "llrrrrrlrrrl",
    )
    return problems


# ------------------------------------------------------------------------------ bytecode


def _layer_top_levels() -> set[str]:
    """Top-level modules the Runtime and Imaging layers install (from their requirements)."""
    names: set[str] = set()
    for req_file in (ROOT / "layers" / "runtime", ROOT / "layers" / "imaging"):
        for line in (req_file / "requirements.txt").read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            dist = line.split("[")[0].split("=")[0].strip()
            try:
                files = metadata.distribution(dist).files or []
            except metadata.PackageNotFoundError:
                continue
            for f in files:
                top = f.parts[0]
                if top.endswith((".dist-info", ".libs")) or top in ("..", "bin", "__pycache__"):
                    continue
                names.add(top.removesuffix(".py"))
    return names


def _without_layers(full: str, target: str) -> int:
    """Copy the bytecode cache at full to target minus the layers' modules; count removed.

    The cache mirrors source directories: a layer module's bytecode is
    <cache>/.../site-packages/<top>/... or <cache>/.../site-packages/<top>.<tag>.pyc.
    """
    shutil.copytree(full, target)
    tops = _layer_top_levels()
    core = str(CORE_LAYER).lstrip("/")
    removed = 0
    for pyc in list(Path(target).rglob("*.pyc")):
        relative = pyc.relative_to(target)
        parts = relative.parts
        if "site-packages" in parts:
            layered = parts[parts.index("site-packages") + 1].split(".")[0] in tops
        else:
            layered = str(relative).startswith(core)
        if layered:
            pyc.unlink()
            removed += 1
    return removed


def _bytecode(status_dir: Path, full_cache: str, env: dict[str, str]) -> None:
    python = os.environ.get("BENCH_BYTECODE_PYTHON") or sys.executable
    version = _run("import platform; print(platform.python_version())", status_dir, env, "", python)
    stand_in = "; this interpreter's bytecode stands in for 3.13's"
    stand_in = stand_in if python == sys.executable else ""
    report.note(
        f"GET /status import by bytecode available, Python {version} ({python}); "
        f"PYTHONDONTWRITEBYTECODE=1, so no run writes any; median of {RUNS}{stand_in}:"
    )
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as scratch:
        if python != sys.executable:  # that interpreter's own bytecode, written by one import
            full_cache = os.path.join(scratch, "full")
            _run(_IMPORT_ONLY, status_dir, {**env, "PYTHONPYCACHEPREFIX": full_cache}, "", python)
        empty = os.path.join(scratch, "empty")
        os.mkdir(empty)
        runtime_only = os.path.join(scratch, "runtime-only")
        removed = _without_layers(full_cache, runtime_only)
        caches = [
            ("none anywhere", empty),
            (f"all but the layers ({removed} .pyc removed): layers built without", runtime_only),
            ("everything: layers built with bytecode", full_cache),
        ]
        times: dict[str, list[float]] = {label: [] for label, _ in caches}
        for _ in range(RUNS):
            for label, cache in caches:
                run_env = {**env, "PYTHONPYCACHEPREFIX": cache, "PYTHONDONTWRITEBYTECODE": "1"}
                times[label].append(float(_run(_IMPORT_ONLY, status_dir, run_env, "", python)))
    with_all = report.median(times[caches[-1][0]])
    report.table(
        ["bytecode for", "import", "vs everything"],
        [
            [label, _ms(times[label]), report.ratio(report.median(times[label]), with_all)]
            for label, _ in caches
        ],
        "lrr",
    )
    layers_share = report.median(times[caches[1][0]]) - with_all
    report.note(
        f"Layer bytecode saves {report.ms(layers_share)} of every cold start of GET /status "
        "(Lambda's runtime modules already have bytecode)."
    )
