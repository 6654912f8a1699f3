"""Schema-driven fuzzing: schemathesis against a local stack of its own, every check.

The stack refuses private URLs (fuzzed URLs cannot resolve here, and must not reach the
machine's own services). Settings, and the few documented refusals of schema-valid input that
only state or the network decide, are in tests/e2e/schemathesis.toml. The run is bounded by
examples per operation and a fixed seed, so it is repeatable; `.schemathesis/` and
`.hypothesis/` go to a temporary folder.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

CONFIG = Path(__file__).parent / "schemathesis.toml"
RUN_TIMEOUT_S = 600


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def fuzz_stack(stack_factory: Any) -> Any:
    return stack_factory(env={"ALLOW_PRIVATE_URLS": "false"})


def test_schemathesis_finds_no_failure(fuzz_stack: Any, tmp_path: Path) -> None:
    images = [
        fuzz_stack.session.post(
            fuzz_stack.url("/images"), files={"image": (f"{i}.png", _png(c), "image/png")}
        )
        for i, c in enumerate([(200, 30, 30), (30, 30, 200)])
    ]
    assert [r.status_code for r in images] == [201, 201], [r.text for r in images]
    upload = fuzz_stack.session.post(fuzz_stack.url("/uploads"), json={"expiry": 3600})
    assert upload.status_code == 201, upload.text
    st = Path(sys.executable).with_name("st")
    command = [
        str(st),
        "--config-file",
        str(CONFIG),
        "run",
        fuzz_stack.url("/openapi.json"),
        "--url",
        fuzz_stack.api_url,
        "--phases",
        "examples,coverage,fuzzing",
        "--workers",
        "1",
        "--seed",
        "20261202",
        "--no-color",
    ]
    # Deletes run last, so the other operations meet the seeded images, not a 404.
    passes = [["--exclude-method", "DELETE"], ["--include-method", "DELETE"]]
    env = {
        **os.environ,
        "IMGSVC_FUZZ_KEY": fuzz_stack.api_key,
        "IMGSVC_FUZZ_IMAGE": images[0].json()["image_id"],
        "IMGSVC_FUZZ_OTHER": images[1].json()["image_id"],
        "IMGSVC_FUZZ_UPLOAD": upload.json()["upload_id"],
    }
    for extra in passes:
        result = subprocess.run(
            [*command, *extra],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-20000:]
        summary = output.strip().splitlines()[-1]
        assert " passed" in output and "failure" not in summary and "error" not in summary, output[
            -3000:
        ]
