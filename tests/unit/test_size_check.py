"""scripts/size_check.py's bytecode audit, on small fake layers (no build needed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# A script, not a package: loaded from its file (sys.modules entry for its dataclasses etc.).
_SPEC = importlib.util.spec_from_file_location(
    "size_check", Path(__file__).resolve().parents[2] / "scripts" / "size_check.py"
)
assert _SPEC and _SPEC.loader
size_check = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("size_check", size_check)
_SPEC.loader.exec_module(size_check)

# PEP 552 header: magic (4 bytes), flags (4), then hash (8) or mtime+size (8).
UNCHECKED, CHECKED, TIMESTAMP = 0b01, 0b11, 0b00


def _layer(root: Path, modules: list[str], *, pyc: dict[str, int], tag: str = "cpython-313"):
    """python/<module>.py files; those named in pyc get __pycache__ bytecode with those flags."""
    for module in modules:
        source = root / "python" / f"{module}.py"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text("x = 1\n")
        if module in pyc:
            cache = source.parent / "__pycache__"
            cache.mkdir(exist_ok=True)
            header = b"\xf3\x0d\r\n" + pyc[module].to_bytes(4, "little") + bytes(8)
            (cache / f"{source.stem}.{tag}.pyc").write_bytes(header)


def test_complete_unchecked_hash_bytecode_passes(tmp_path: Path) -> None:
    _layer(tmp_path, ["a", "pkg/b"], pyc={"a": UNCHECKED, "pkg/b": UNCHECKED})
    assert size_check.audit_bytecode("L", tmp_path) == (2, 2, [])


def test_missing_bytecode_is_counted(tmp_path: Path) -> None:
    _layer(tmp_path, ["a", "b", "c"], pyc={"a": UNCHECKED})
    modules, compiled, problems = size_check.audit_bytecode("L", tmp_path)
    assert (modules, compiled, problems) == (3, 1, [])


@pytest.mark.parametrize("flags", [CHECKED, TIMESTAMP])
def test_bytecode_that_checks_its_source_is_refused(tmp_path: Path, flags: int) -> None:
    _layer(tmp_path, ["a"], pyc={"a": flags})
    _, _, problems = size_check.audit_bytecode("L", tmp_path)
    assert problems == ["L: python/__pycache__/a.cpython-313.pyc is not unchecked-hash bytecode"]


def test_bytecode_for_another_python_is_refused(tmp_path: Path) -> None:
    _layer(tmp_path, ["a"], pyc={"a": UNCHECKED}, tag="cpython-311")
    modules, compiled, problems = size_check.audit_bytecode("L", tmp_path)
    assert (modules, compiled) == (1, 0)
    assert len(problems) == 1 and "another Python" in problems[0]


BUILT_TEMPLATE = """
Resources:
  One: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: One}}
  Two: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: Two}}
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: Fn, Layers: [{Ref: One}, {Ref: Two}]}
"""


def _build(tmp_path: Path, one: dict[str, int], two: dict[str, int]) -> Path:
    build = tmp_path / "build"
    (build / "Fn").mkdir(parents=True)
    (build / "template.yaml").write_text(BUILT_TEMPLATE)
    _layer(build / "One", ["a", "b"], pyc=one)
    _layer(build / "Two", ["c"], pyc=two)
    return build


def test_a_partial_compile_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = _build(tmp_path, {"a": UNCHECKED, "b": UNCHECKED}, {})
    assert size_check.main(["--build-dir", str(build)]) == 1
    assert "Two: 1 of 1 modules have no cpython-313 bytecode" in capsys.readouterr().err


def test_complete_bytecode_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build = _build(tmp_path, {"a": UNCHECKED, "b": UNCHECKED}, {"c": UNCHECKED})
    assert size_check.main(["--build-dir", str(build), "--require-bytecode"]) == 0
    assert "layers ship cpython-313 bytecode" in capsys.readouterr().out


def test_no_bytecode_passes_unless_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build = _build(tmp_path, {}, {})
    assert size_check.main(["--build-dir", str(build)]) == 0
    assert "no cpython-313 bytecode in the layers" in capsys.readouterr().out
    assert size_check.main(["--build-dir", str(build), "--require-bytecode"]) == 1
