"""Analyze an image by URL: format, size and mode, reading only the image's header."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import ConfigDict

from imgsvc.cache import AnalysisCache
from imgsvc.config import get_settings
from imgsvc.schemas import ONE_URL, UrlBody


class AnalyzeRequest(UrlBody):
    model_config = ConfigDict(
        json_schema_extra={**ONE_URL, "examples": [{"url": "https://example.com/photo.jpg"}]},
    )


def _capped(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """Yield at most ``limit`` bytes: the header must be found within them."""
    remaining = limit
    for chunk in chunks:
        if remaining <= 0:
            return
        yield chunk[:remaining]
        remaining -= len(chunk)


def analyze_url(url: str, cache: AnalysisCache) -> tuple[dict[str, Any], str, int]:
    """(result, cache tier "memory"/"shared"/"miss", bytes read from the network)."""
    # Imported here so that importing this module stays cheap for cache hits' cold starts.
    from imgsvc.fetch import open_url, validate_url
    from imgsvc.imaging import probe

    # The one URL validator, which also normalises: HTTPS://Example.COM/a and
    # https://example.com/a are one URL, one cache entry.
    url = validate_url(url)
    cached, tier = cache.get(url)
    if cached is not None:
        return cached, tier, 0
    settings = get_settings()
    # Images over the upload limit are refused from their Content-Length; of the rest only the
    # header is read, at most analyze_max_bytes of it.
    with open_url(url, max_bytes=settings.max_upload_bytes) as response:
        info, _ = probe(_capped(response.iter_chunks(16 * 1024), settings.analyze_max_bytes))
        bytes_read = response.bytes_read
    result = info.to_dict()
    cache.put(url, result)
    return result, "miss", bytes_read
