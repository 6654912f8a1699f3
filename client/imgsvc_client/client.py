"""A typed client for the imgsvc API: every route, paging iterators, errors as exceptions.

Retries: a 429 (API Gateway throttling and quotas reject before the function runs) is retried
for every operation. Transient failures (connection errors, timeouts, 502/503/504) are retried
only for operations that are safe to repeat:

- reads: every GET, ``POST /analyze``, ``POST /images/lookup``;
- content-addressed writes: ``POST /images`` (import or direct upload), ``POST .../crop`` and
  the presigned POST to S3 (the same bytes are the same image; a second delivery changes
  nothing). ``POST /images`` and crop carry an ``Idempotency-Key`` (a new UUID per call, the
  same on each of its retries), so a retry after a commit whose answer was lost answers what
  the first attempt did and counts nothing twice.

``POST /uploads`` (a second session would be an orphan), ``DELETE /images/{id}`` (a repeat
answers 404 although the first call deleted it) and ``DELETE /images?confirm=true`` (a repeat
deletes the next batch) are never retried after a transient failure.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypedDict

import requests

__all__ = [
    "ApiError",
    "Client",
    "FileState",
    "Image",
    "Limits",
    "ProgressCallback",
    "UploadSession",
]

ProgressCallback = Callable[[int], None]  # called with the number of bytes just sent
RETRY_STATUSES = frozenset({502, 503, 504})
IDEMPOTENCY_KEY = "Idempotency-Key"
DEFAULT_TIMEOUT = 60.0


class ApiError(Exception):
    """An error answer of the API: ``code`` is the API's error code (``not_found``, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class Limits(TypedDict):
    max_upload_bytes: int
    max_direct_upload_bytes: int
    content_types: list[str]
    extensions: dict[str, str]
    max_files_per_request: int
    max_files_per_session: int
    max_lookup_ids: int


class Status(TypedDict, total=False):
    status: str
    version: str
    limits: Limits


class Image(TypedDict, total=False):
    image_id: str
    format: str
    width: int
    height: int
    mode: str
    bytes: int
    sha256: str
    sha1: str
    make: str | None
    model: str | None
    camera: str | None
    orientation: int | None
    taken_at: str | None
    display_width: int
    display_height: int
    phash: str
    name: str | None
    desc: str | None
    source_url: str | None
    derived_from: str | None
    created_at: str


class PresignedPost(TypedDict):
    filename: str
    url: str
    fields: dict[str, str]


class UploadSession(TypedDict):
    upload_id: str
    expires_at: str
    files: list[PresignedPost]


class FileState(TypedDict):
    status: str  # pending | done | rejected
    image_id: str | None
    duplicate: bool
    error: str | None


class FileSpec(TypedDict, total=False):
    filename: str
    content_type: str
    size: int


class _MultipartFile:
    """A multipart/form-data body streamed from a file, reporting progress as it is read.

    Written by hand because requests builds multipart bodies in memory and has no progress
    hook; ``__len__`` gives requests the Content-Length S3 needs for a POST.
    """

    CHUNK = 64 * 1024

    def __init__(
        self,
        fields: dict[str, str],
        source: BinaryIO,
        size: int,
        filename: str,
        content_type: str,
        progress: ProgressCallback | None,
    ) -> None:
        self.boundary = f"imgsvc-{random.getrandbits(64):016x}"
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode()
            + v.encode()
            + b"\r\n"
            for k, v in fields.items()
        )
        quoted = filename.replace('"', "%22")
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{quoted}"\r\nContent-Type: {content_type}\r\n\r\n'
        ).encode()
        self._parts = [head, None, f"\r\n--{self.boundary}--\r\n".encode()]
        self._source, self._size, self._progress = source, size, progress
        self._length = len(head) + size + len(self._parts[2])
        self._index, self._pending = 0, b""

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._length

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(self.CHUNK), b""))
        while not self._pending and self._index < 3:
            part = self._parts[self._index]
            if part is None:
                data = self._source.read(min(n, self.CHUNK))
                if data:
                    if self._progress:
                        self._progress(len(data))
                    return data
                self._index += 1
                continue
            self._pending, self._index = part, self._index + 1
        out, self._pending = self._pending[:n], self._pending[n:]
        return out


class Client:
    """The imgsvc API. ``api_url`` is the stage URL (no trailing slash), ``api_key`` the key."""

    def __init__(
        self,
        api_url: str,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = 5,
        backoff: float = 0.5,
        session: requests.Session | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.http = session or requests.Session()
        if api_key:
            self.http.headers["x-api-key"] = api_key
        self.http.headers["User-Agent"] = "imgsvc-client/0.1"
        self._limits: Limits | None = None

    # ------------------------------------------------------------------ transport
    def _delay(self, attempt: int, response: requests.Response | None) -> float:
        after = response.headers.get("Retry-After") if response is not None else None
        if after and after.isdigit():
            return min(float(after), 30.0)
        return self.backoff * 2**attempt * (0.5 + random.random() / 2)  # jittered

    def send(
        self,
        method: str,
        url: str,
        *,
        safe: bool,
        body_factory: Callable[[], dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP exchange with the retry policy of the module docstring.

        ``body_factory`` builds fresh request arguments per attempt (a streamed body can be
        read once). Error answers raise ApiError.
        """
        kwargs.setdefault("timeout", self.timeout)
        for attempt in range(self.retries + 1):
            extra = body_factory() if body_factory else {}
            last = attempt == self.retries
            try:
                response = self.http.request(method, url, **kwargs, **extra)
            except (requests.ConnectionError, requests.Timeout):
                if not safe or last:
                    raise
                time.sleep(self._delay(attempt, None))
                continue
            retry = response.status_code == 429 or (safe and response.status_code in RETRY_STATUSES)
            if retry and not last:
                time.sleep(self._delay(attempt, response))
                continue
            if response.status_code >= 400:
                raise _api_error(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _json(self, method: str, path: str, *, safe: bool, **kwargs: Any) -> Any:
        response = self.send(method, self.api_url + path, safe=safe, **kwargs)
        return response.json()

    def _keyed(self, path: str, **kwargs: Any) -> Any:
        """A POST with a fresh Idempotency-Key, sent unchanged with each of its retries."""
        headers = {IDEMPOTENCY_KEY: str(uuid.uuid4())}
        return self._json("POST", path, safe=True, headers=headers, **kwargs)

    # ------------------------------------------------------------------ service
    def status(self) -> Status:
        return self._json("GET", "/status", safe=True)

    def limits(self) -> Limits:
        """The service's limits from ``/status`` (cached on the client)."""
        if self._limits is None:
            self._limits = self.status()["limits"]
        return self._limits

    def analyze(self, url: str) -> dict[str, Any]:
        # image_url: the original name, which the service keeps accepting
        return self._json("POST", "/analyze", safe=True, json={"image_url": url})

    def history(self, limit: int = 100) -> dict[str, Any]:
        return self._json("GET", "/history", safe=True, params={"limit": limit})

    def stats(self) -> dict[str, Any]:
        return self._json("GET", "/stats", safe=True)

    # ------------------------------------------------------------------ library
    def list_images(self, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/images", safe=True, params=params)

    def iter_images(self, page_size: int = 100) -> Iterator[Image]:
        """Every image, newest first, following ``next_cursor`` page by page."""
        cursor = None
        while True:
            page = self.list_images(page_size, cursor)
            yield from page["images"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def get_image(self, image_id: str) -> Image:
        return self._json("GET", f"/images/{image_id}", safe=True)

    def lookup(self, sha256: list[str]) -> set[str]:
        """Which of these sha256 digests the library holds (batched by the service's limit)."""
        size = self.limits()["max_lookup_ids"]
        found: set[str] = set()
        unique = list(dict.fromkeys(sha256))
        for start in range(0, len(unique), size):
            chunk = unique[start : start + size]
            answer = self._json("POST", "/images/lookup", safe=True, json={"sha256": chunk})
            found.update(answer["found"])
        return found

    def content_url(self, image_id: str) -> str:
        """The short-lived download link ``/images/{id}/content`` redirects to."""
        response = self.send(
            "GET", f"{self.api_url}/images/{image_id}/content", safe=True, allow_redirects=False
        )
        return response.headers["Location"]

    def download(self, image_id: str, dest: Path, progress: ProgressCallback | None = None) -> int:
        """Write the image's bytes to ``dest``; returns the number of bytes."""
        url = self.content_url(image_id)
        response = self.send("GET", url, safe=True, stream=True, headers={"x-api-key": None})
        total = 0
        tmp = dest.with_name(dest.name + ".part")
        with tmp.open("wb") as out:
            for chunk in response.iter_content(64 * 1024):
                out.write(chunk)
                total += len(chunk)
                if progress:
                    progress(len(chunk))
        tmp.replace(dest)
        return total

    def delete_image(self, image_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/images/{image_id}", safe=False)

    def delete_all(self) -> int:
        """Delete every image (the service deletes a batch a call); returns how many."""
        deleted = 0
        while True:
            answer = self._json("DELETE", "/images", safe=False, params={"confirm": "true"})
            deleted += answer["deleted"]
            if not answer["more"]:
                return deleted

    def import_url(
        self, url: str, name: str | None = None, desc: str | None = None
    ) -> dict[str, Any]:
        body = {k: v for k, v in (("url", url), ("name", name), ("desc", desc)) if v is not None}
        return self._keyed("/images", json=body)

    def import_file(
        self, path: Path, name: str | None = None, desc: str | None = None
    ) -> dict[str, Any]:
        """A direct upload (at most ``max_direct_upload_bytes``); larger files use upload_file."""
        fields = {k: v for k, v in (("name", name), ("desc", desc)) if v is not None}

        def body() -> dict[str, Any]:
            return {"data": fields, "files": {"image": (path.name, path.read_bytes())}}

        return self._keyed("/images", body_factory=body)

    def crop(self, image_id: str, left: int, top: int, right: int, bottom: int) -> Image:
        box = {"left": left, "top": top, "right": right, "bottom": bottom}
        return self._keyed(f"/images/{image_id}/crop", json=box)

    def diff(self, image_id: str, other_id: str, threshold: int | None = None) -> dict[str, Any]:
        params = {"threshold": threshold} if threshold is not None else {}
        return self._json("GET", f"/images/{image_id}/diff/{other_id}", safe=True, params=params)

    def similar(
        self, image_id: str, max_distance: int | None = None, limit: int | None = None
    ) -> dict[str, Any]:
        params = {
            k: v for k, v in (("max_distance", max_distance), ("limit", limit)) if v is not None
        }
        return self._json("GET", f"/images/{image_id}/similar", safe=True, params=params)

    def ascii(self, image_id: str, width: int = 80) -> str:
        response = self.send(
            "GET", f"{self.api_url}/images/{image_id}/ascii", safe=True, params={"width": width}
        )
        return response.text

    # ------------------------------------------------------------------ uploads
    def create_upload(self, files: list[FileSpec], expiry: int = 3600) -> UploadSession:
        return self._json("POST", "/uploads", safe=False, json={"expiry": expiry, "files": files})

    def add_upload_files(self, upload_id: str, files: list[FileSpec]) -> UploadSession:
        return self._json("POST", f"/uploads/{upload_id}/files", safe=False, json={"files": files})

    def upload_state(self, upload_id: str) -> dict[str, Any]:
        return self._json("GET", f"/uploads/{upload_id}", safe=True)

    def post_file(
        self,
        post: PresignedPost,
        path: Path | None = None,
        *,
        data: bytes | None = None,
        content_type: str,
        progress: ProgressCallback | None = None,
        opener: Callable[[], BinaryIO] | None = None,
        size: int | None = None,
    ) -> None:
        """Send one file to S3 with its presigned POST (from ``path``, ``data`` or ``opener``).

        On a retry the progress callback sees negative bytes first, undoing the failed try.
        """
        import io

        if opener is None:
            if path is not None:
                opener, size = (lambda: path.open("rb")), path.stat().st_size
            elif data is not None:
                opener, size = (lambda: io.BytesIO(data)), len(data)
            else:
                raise ValueError("post_file needs path, data or opener")
        assert size is not None
        sent = [0]

        def counted(n: int) -> None:
            sent[0] += n
            if progress:
                progress(n)

        def body() -> dict[str, Any]:
            if sent[0] and progress:
                progress(-sent[0])
            sent[0] = 0
            encoder = _MultipartFile(
                post["fields"], opener(), size, post["filename"], content_type, counted
            )
            # S3 needs no API key: do not send it there.
            headers = {"Content-Type": encoder.content_type, "x-api-key": None}
            return {"data": encoder, "headers": headers}

        # The same object twice is one image: safe to repeat.
        self.send("POST", post["url"], safe=True, body_factory=body)

    def wait_upload(
        self,
        upload_id: str,
        filenames: set[str] | None = None,
        *,
        timeout: float = 300.0,
        interval: float = 0.2,
    ) -> dict[str, FileState]:
        """Poll ``GET /uploads/{id}`` until these files (default: all) are no longer pending."""
        deadline = time.monotonic() + timeout
        while True:
            files: dict[str, FileState] = self.upload_state(upload_id)["files"]
            wanted = {n: s for n, s in files.items() if filenames is None or n in filenames}
            if all(s["status"] != "pending" for s in wanted.values()):
                return wanted
            if time.monotonic() > deadline:
                raise TimeoutError(f"upload {upload_id}: files still pending after {timeout} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 2.0)

    def upload_file(
        self,
        path: Path,
        *,
        filename: str | None = None,
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> FileState:
        """One file through a presigned POST, waiting for the ingest's verdict."""
        content_type = content_type or self.content_type_for(path.name)
        name = filename or path.name
        session = self.create_upload(
            [{"filename": name, "content_type": content_type, "size": path.stat().st_size}]
        )
        self.post_file(session["files"][0], path, content_type=content_type, progress=progress)
        return self.wait_upload(session["upload_id"], {name})[name]

    def content_type_for(self, name: str) -> str:
        """The content type the service accepts for this file name's extension."""
        ext = Path(name).suffix.lower()
        try:
            return self.limits()["extensions"][ext]
        except KeyError:
            raise ValueError(f"{name}: {ext or 'no extension'} is not an accepted type") from None


def _api_error(response: requests.Response) -> ApiError:
    try:
        body = response.json()
        return ApiError(response.status_code, str(body["code"]), str(body["message"]))
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().replace("\n", " ")[:200]
        return ApiError(response.status_code, f"http_{response.status_code}", text or "no body")
