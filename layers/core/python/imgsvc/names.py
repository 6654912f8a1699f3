"""One set of file-name rules for every entry point (presigned uploads, direct multipart
uploads, URL imports): a plain name, no path, no control characters, at most 255 bytes."""

from __future__ import annotations

import posixpath

# S3 keys are at most 1024 bytes of UTF-8; with the prefix and upload id this leaves room.
FILENAME_MAX_BYTES = 255


def filename_problem(value: str) -> str | None:
    """What is wrong with a file name, or None when it is acceptable."""
    if not value:
        return "must not be empty"
    if value in (".", "..") or any(c in value for c in "/\\") or not value.isprintable():
        return "must be a plain file name: no slashes, control characters, '.' or '..'"
    if len(value.encode("utf-8")) > FILENAME_MAX_BYTES:
        return f"must be at most {FILENAME_MAX_BYTES} bytes in UTF-8"
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
    name = "".join(c for c in posixpath.basename(value) if c.isprintable() and c not in "\\")
    while len(name.encode("utf-8")) > FILENAME_MAX_BYTES:
        name = name[:-1]
    return fallback if filename_problem(name) else name
