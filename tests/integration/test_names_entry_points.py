"""One set of file-name rules: presigned uploads and direct multipart uploads refuse the same
names; URL imports derive an acceptable one."""

from __future__ import annotations

import pytest

from tests.conftest import api_event, call, load_handler
from tests.integration.test_api_handlers import multipart

LONG = "\N{GRINNING FACE}" * 197 + ".jpg"  # 201 characters
BAD = ["..", ".", "a\x00.jpg", "a\nb.jpg", "tab\t.jpg", "\u202e.jpg", LONG, ""]


@pytest.mark.parametrize("name", ["..", "a\x01.jpg", LONG])
def test_direct_multipart_upload_refuses_a_bad_file_name(aws, name: str) -> None:
    body, ctype = multipart({}, {"image": (name, b"GIF89a", "image/gif")})
    status, got, _ = call(
        load_handler("import_image"),
        api_event("POST", "/images", body=body, headers={"Content-Type": ctype}),
    )
    assert status == 400 and got["code"] == "bad_request" and "filename" in got["message"]
