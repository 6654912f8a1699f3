"""What each handler imports on a cold start: Pillow, numpy and imagehash load on first use.

Issue 7's budget: a function with the imaging layer imports in at most (boto3 + one client)
+ 220 ms only because the heavy modules wait until a request needs them (`make bench`
measures the time; this checks the cause, without timing anything).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/app.py"))
HEAVY = ("PIL", "numpy", "imagehash", "pi_heif", "scipy", "aws_xray_sdk")

PROBE = """
import json, sys
sys.path[:0] = [{core!r}, {function!r}]
import app
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


@pytest.mark.parametrize("function", FUNCTIONS)
def test_no_heavy_module_is_imported_at_cold_start(function: str) -> None:
    code = PROBE.format(
        core=str(ROOT / "layers" / "core" / "python"),
        function=str(ROOT / "functions" / function),
        heavy=HEAVY,
    )
    env = {
        **os.environ,
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TRACING_ENABLED": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
