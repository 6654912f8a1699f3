"""One set of file-name rules: presigned uploads and direct multipart uploads refuse the same
names; URL imports derive an acceptable one."""

from __future__ import annotations

import pytest

from imgsvc import names
from imgsvc.uploads import FileSpec

LONG = "\N{GRINNING FACE}" * 197 + ".jpg"  # 201 characters
BAD = ["..", ".", "a\x00.jpg", "a\nb.jpg", "tab\t.jpg", "\u202e.jpg", LONG, ""]


@pytest.mark.parametrize("name", BAD)
def test_every_entry_point_refuses_the_same_names(name: str) -> None:
    assert names.filename_problem(name)
    with pytest.raises(ValueError):
        FileSpec(filename=name, content_type="image/jpeg")
    with pytest.raises(ValueError):
        names.client_filename(name)


def test_a_client_path_keeps_its_last_segment_and_is_then_checked() -> None:
    assert names.client_filename("C:\\photos\\cat.jpg") == "cat.jpg"
    assert names.client_filename("dir/cat.jpg") == "cat.jpg"
    with pytest.raises(ValueError):
        names.client_filename("dir/..")


def test_a_derived_name_is_made_acceptable() -> None:
    assert names.derived_filename("/a/b/cat.jpg", "import") == "cat.jpg"
    assert names.derived_filename("/a/..", "import") == "import"
    assert names.derived_filename("/a/x\ny.jpg", "import") == "xy.jpg"
    derived = names.derived_filename("/" + LONG, "import")
    assert len(derived) <= names.FILENAME_MAX_CHARS and not names.filename_problem(derived)
