"""scripts/sam_local.py without Docker: the image name SAM wants, the template copy, --env-vars."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from cfnlint.decode import decode

ROOT = Path(__file__).resolve().parents[2]
# A script, not a package: loaded from its file.
_SPEC = importlib.util.spec_from_file_location("sam_local", ROOT / "scripts" / "sam_local.py")
assert _SPEC and _SPEC.loader
sam_local = importlib.util.module_from_spec(_SPEC)
sys.modules.setdefault("sam_local", sam_local)
_SPEC.loader.exec_module(sam_local)


def test_the_stand_in_has_the_name_sam_runs_python313_on() -> None:
    # What `sam local` looks for (without --invoke-image); a samcli upgrade that renames it
    # would make the stand-in useless, so this pins it.
    assert sam_local.base_image_name("x86_64") == "public.ecr.aws/lambda/python:3.13-x86_64"
    assert sam_local.base_image_name("arm64") == "public.ecr.aws/lambda/python:3.13-arm64"


def test_the_x86_64_copy_changes_only_architectures_and_paths(tmp_path: Path) -> None:
    copy, errors = decode(str(sam_local.arch_template("x86_64", tmp_path)))
    original, _ = decode(str(ROOT / "template.yaml"))
    assert not errors
    assert copy["Globals"]["Function"]["Architectures"] == ["x86_64"]
    for name, res in copy["Resources"].items():
        props, meta = res.get("Properties", {}), res.get("Metadata", {})
        if res["Type"] == "AWS::Serverless::LayerVersion":
            assert props["CompatibleArchitectures"] == ["x86_64"], name
            assert meta["BuildArchitecture"] == "x86_64", name
        for key in ("CodeUri", "ContentUri"):
            if key in props:
                assert props[key] == f"{ROOT}/{original['Resources'][name]['Properties'][key]}"
        if "ContextPath" in meta:
            assert meta["ContextPath"] == str(ROOT), name
    assert "arm64" not in (tmp_path / "template-x86_64.yaml").read_text()
    assert (
        copy["Globals"]["Function"]["Environment"] == original["Globals"]["Function"]["Environment"]
    )


def test_env_vars_point_every_function_at_the_endpoint() -> None:
    info = {
        "environments": {
            "StatusFunction": {"POWERTOOLS_SERVICE_NAME": "imgsvc", "AWS_ENDPOINT_URL": ""},
            "UploadsFunction": {"TABLE_NAME": "local-image-table", "AWS_ENDPOINT_URL": ""},
        }
    }
    env = sam_local.env_vars(info, "http://172.17.0.1:4566")
    assert env == {
        "StatusFunction": {
            "POWERTOOLS_SERVICE_NAME": "imgsvc",
            "AWS_ENDPOINT_URL": "http://172.17.0.1:4566",
        },
        "UploadsFunction": {
            "TABLE_NAME": "local-image-table",
            "AWS_ENDPOINT_URL": "http://172.17.0.1:4566",
        },
    }


def test_sam_never_sees_real_credentials(monkeypatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "prod")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example")
    env = sam_local.sam_env()
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"} & set(env)
    assert env["AWS_ACCESS_KEY_ID"] == "testing"
    assert env["AWS_CONFIG_FILE"] == env["AWS_SHARED_CREDENTIALS_FILE"]
