"""One set of file-name rules for every entry point (presigned uploads, direct multipart
uploads, URL imports), published in the API's schema as the same pattern.

A plain name, no path: no slashes, no control characters, no bidi overrides (which make a name
display as another) or line separators, not "." or "..", at most 200 characters. The S3 key
uploads/<uuid>/<name> must stay within S3's 1,024 bytes, and 200 characters are at most 800
bytes of UTF-8.
"""

from __future__ import annotations

import posixpath
import re

FILENAME_MAX_CHARS = 200
_BANNED = r"/\\\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069"
# Valid as both a Python and an ECMA-262 (JSON Schema) pattern.
FILENAME_PATTERN = rf"^(?!\.\.?$)[^{_BANNED}]+$"
_FILENAME_RE = re.compile(FILENAME_PATTERN)
_BANNED_RE = re.compile(f"[{_BANNED}]")


def filename_problem(value: str) -> str | None:
    """What is wrong with a file name, or None when it is acceptable."""
    if not value:
        return "must not be empty"
    if len(value) > FILENAME_MAX_CHARS:
        return f"must be at most {FILENAME_MAX_CHARS} characters"
    if not _FILENAME_RE.fullmatch(value):  # fullmatch: `$` alone allows a trailing newline
        return "must be a plain file name: no slashes, control or bidi characters, not . or .."
    return None


def client_filename(value: str) -> str:
    """The last path segment of a name a client sent (browsers may send a whole Windows path);
    raises ValueError when that segment breaks the rules."""
    name = posixpath.basename(value.replace("\\", "/"))
    problem = filename_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def derived_filename(value: str, fallback: str) -> str:
    """A name we derive (from a URL path): made acceptable rather than refused."""
    name = _BANNED_RE.sub("", posixpath.basename(value))[:FILENAME_MAX_CHARS]
    return fallback if filename_problem(name) else name
