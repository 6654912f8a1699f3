"""The limits a client must respect, in one place: GET /status publishes them.

No boto3, PIL or pydantic here: the status function imports this on every cold start.
"""

from __future__ import annotations

from typing import Any

from imgsvc.config import MIB, get_settings

# Content types a presigned upload may declare. Never image/svg+xml: SVG is script, not pixels.
UPLOAD_CONTENT_TYPES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/gif": "GIF",
    "image/webp": "WEBP",
    "image/tiff": "TIFF",
    "image/bmp": "BMP",
}
# File name extensions a client may map to those content types.
EXTENSIONS = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".bmp": "image/bmp",
}
MAX_FILES_PER_REQUEST = 50
MAX_FILES_PER_SESSION = 1000
# Lambda's 6 MB request limit applies after base64, so a direct upload stays under 4 MiB.
DIRECT_UPLOAD_MAX_BYTES = 4 * MIB
# POST /images/lookup: one BatchGetItem call holds at most 100 keys.
MAX_LOOKUP_IDS = 100


def published() -> dict[str, Any]:
    """The limits as GET /status reports them."""
    return {
        "max_upload_bytes": get_settings().max_upload_bytes,
        "max_direct_upload_bytes": DIRECT_UPLOAD_MAX_BYTES,
        "content_types": sorted(UPLOAD_CONTENT_TYPES),
        "extensions": EXTENSIONS,
        "max_files_per_request": MAX_FILES_PER_REQUEST,
        "max_files_per_session": MAX_FILES_PER_SESSION,
        "max_lookup_ids": MAX_LOOKUP_IDS,
    }
