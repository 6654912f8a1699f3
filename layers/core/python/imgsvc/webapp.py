"""The web app's static files: versioned URLs, cache headers and the Content-Security-Policy.

The files live next to the handler (functions/webapp/static). Their URLs carry a version made
of the files' hash (static/<version>/<name>), so a browser may cache them for a year and a new
deployment is picked up at once: index.html itself is never cached.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from imgsvc.errors import NotFound

IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# Placeholder in index.html for the versioned asset folder.
VERSION_MARK = "{{version}}"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
}


@dataclass(frozen=True)
class Asset:
    body: str
    content_type: str


class Assets:
    """Every file of a static folder, read once per container (the files are small)."""

    def __init__(self, folder: Path) -> None:
        self.files: dict[str, Asset] = {}
        digest = hashlib.sha256()
        for path in sorted(folder.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            text = path.read_text(encoding="utf-8")
            digest.update(path.name.encode() + b"\0" + text.encode() + b"\0")
            kind = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
            self.files[path.name] = Asset(text, kind or "application/octet-stream")
        self.version = digest.hexdigest()[:12]

    def index(self) -> str:
        return self.files["index.html"].body.replace(VERSION_MARK, self.version)

    def get(self, version: str, name: str) -> tuple[Asset, str]:
        """The file and its Cache-Control: immutable only under the current version."""
        asset = self.files.get(name)
        if asset is None or name == "index.html":
            raise NotFound(f"no static file {name[:80]!r}")
        return asset, IMMUTABLE if version == self.version else NO_CACHE


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(s3_origins: list[str]) -> str:
    """Scripts and styles only from the API itself (no inline, no foreign ones); pictures and
    uploads may also use the bucket's endpoint, where presigned links point."""
    extra = " ".join(sorted(set(s3_origins)))
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' blob: data: {extra}".strip(),
            f"connect-src 'self' {extra}".strip(),
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


def page_headers(csp: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }


def stage_redirect(context_path: str | None) -> str | None:
    """``…/prod`` (no slash) reaches the root resource too, but relative URLs would then resolve
    against the host's root: redirect to ``prod/`` (relative, so it works behind any domain)."""
    if not context_path or context_path.endswith("/"):
        return None
    return context_path.rsplit("/", 1)[-1] + "/"
