"""The limits a client must respect, in one place: GET /status publishes them.

No boto3, PIL or pydantic here: the status function imports this on every cold start.
"""

from __future__ import annotations

from typing import Any

from imgsvc import formats
from imgsvc.config import MIB, get_settings

# Content types a presigned upload may declare, and the file extensions a client maps to them.
UPLOAD_CONTENT_TYPES = formats.CONTENT_TYPES
EXTENSIONS = formats.EXTENSIONS
MAX_FILES_PER_REQUEST = 50
MAX_FILES_PER_SESSION = 1000  # the default of the MAX_FILES_PER_SESSION setting
# Lambda's 6 MB request limit applies after base64, so a direct upload stays under 4 MiB.
DIRECT_UPLOAD_MAX_BYTES = 4 * MIB
# POST /images/lookup: one BatchGetItem call holds at most 100 keys.
MAX_LOOKUP_IDS = 100


def max_files_per_session() -> int:
    """Files one upload session may hold (the MAX_FILES_PER_SESSION setting)."""
    return get_settings().max_files_per_session


def published() -> dict[str, Any]:
    """The limits as GET /status reports them."""
    return {
        "max_upload_bytes": get_settings().max_upload_bytes,
        "max_direct_upload_bytes": DIRECT_UPLOAD_MAX_BYTES,
        "content_types": sorted(UPLOAD_CONTENT_TYPES),
        "extensions": EXTENSIONS,
        "max_files_per_request": MAX_FILES_PER_REQUEST,
        "max_files_per_session": max_files_per_session(),
        "max_lookup_ids": MAX_LOOKUP_IDS,
    }
