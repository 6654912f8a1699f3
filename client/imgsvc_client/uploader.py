"""Bulk uploads: files, folders and zip archives, deduplicated by sha256, resumable.

Names (the upload file name the service sees, which must be a plain name): a file given on
the command line keeps its base name; a file found in a folder or a zip archive is named by its
path below that folder or inside that archive, with ``/`` written as ``__``
(``DCIM/100APPLE/IMG_0001.JPG`` under ``DCIM`` is ``100APPLE__IMG_0001.JPG``; a zip found in a
folder adds its own path: ``old__trip.zip__IMG_0001.JPG``). A name still taken in the same run
gets ``~2``, ``~3``, ... before its extension.

The journal (one small JSON file per API URL) records each file sent to S3 but not yet
processed, and each file the service rejected, by sha256; a rerun asks the service about the
former instead of sending them again, and reports the latter without sending them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any

from imgsvc_client.client import ApiError, Client, FileSpec, Limits

# Zip guards: declared sizes are checked before reading, and zipfile never inflates a member
# past its declared size (it fails on a mismatch), so these bound the work an archive causes.
ZIP_MAX_MEMBERS = 100_000
ZIP_MAX_RATIO = 200  # uncompressed / compressed: real photos compress little
ZIP_MAX_TOTAL_BYTES = 64 * 1024**3
JUNK_NAMES = {".DS_Store", "Thumbs.db", "desktop.ini"}
NAME_MAX_BYTES = 255


@dataclass
class Source:
    label: str  # what the user sees: a path, or archive.zip!member
    name: str  # the upload file name (see the module docstring)
    size: int
    opener: Callable[[], IO[bytes]] = field(repr=False)
    content_type: str = ""
    sha256: str = ""


@dataclass
class Outcome:
    label: str
    name: str
    status: str  # created | duplicate | rejected | failed
    image_id: str | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Summary:
    outcomes: list[Outcome]
    files_sent: int = 0
    bytes_sent: int = 0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return not any(o.status in ("rejected", "failed") for o in self.outcomes)

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "duplicates": self.count("duplicate"),
            "rejected": self.count("rejected"),
            "failed": self.count("failed"),
            "files_sent": self.files_sent,
            "bytes_sent": self.bytes_sent,
            "files": [o.to_json() for o in self.outcomes],
        }


class Progress:
    """What the engine reports; the command line draws it, a script may ignore it."""

    def phase(self, name: str, total_files: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def step(self) -> None:
        """One more file of the current phase is through."""

    def file_done(self, outcome: Outcome) -> None: ...


# ---------------------------------------------------------------------- finding the files
def _is_junk(parts: Iterable[str]) -> bool:
    parts = list(parts)
    return (
        "__MACOSX" in parts
        or any(p.startswith(".") for p in parts)  # .git, ._resource forks, hidden files
        or parts[-1] in JUNK_NAMES
    )


class _Namer:
    """Distinct plain names within a run (the rule of the module docstring)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()

    def __call__(self, parts: list[str]) -> str:
        raw = "__".join(parts)
        clean = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in raw)
        clean = unicodedata.normalize("NFC", clean)
        stem, dot, ext = clean.rpartition(".")
        if not dot:
            stem, ext = clean, ""
        suffix = f".{ext}" if dot else ""
        n = 1
        while True:
            tag = "" if n == 1 else f"~{n}"
            budget = NAME_MAX_BYTES - len((tag + suffix).encode())
            base = stem.encode()[:budget].decode(errors="ignore")
            name = f"{base}{tag}{suffix}"
            if name not in self.taken:
                self.taken.add(name)
                return name
            n += 1


def _zip_sources(
    archive: Path, prefix: list[str], namer: _Namer, limits: Limits, rejected: list[Outcome]
) -> list[Source]:
    out: list[Source] = []
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError) as err:
        rejected.append(Outcome(str(archive), archive.name, "rejected", reason=f"bad zip: {err}"))
        return out
    if len(members) > ZIP_MAX_MEMBERS:
        reason = f"more than {ZIP_MAX_MEMBERS} entries: not read"
        rejected.append(Outcome(str(archive), archive.name, "rejected", reason=reason))
        return out
    total = 0
    for info in members:
        if info.is_dir():
            continue
        member = PurePosixPath(info.filename.replace("\\", "/"))
        label = f"{archive}!{info.filename}"
        if member.is_absolute() or ".." in member.parts or ":" in member.parts[0]:
            rejected.append(
                Outcome(label, info.filename, "rejected", reason="path escapes the archive")
            )
            continue
        if _is_junk(member.parts):
            continue
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            rejected.append(Outcome(label, member.name, "rejected", reason="a symbolic link"))
            continue
        name = namer([*prefix, *member.parts])
        if member.suffix.lower() == ".zip":
            reason = "a zip inside a zip: extract the outer one first"
            rejected.append(Outcome(label, name, "rejected", reason=reason))
            continue
        if info.file_size > limits["max_upload_bytes"]:
            reason = f"{info.file_size} bytes, over the limit of {limits['max_upload_bytes']}"
            rejected.append(Outcome(label, name, "rejected", reason=reason))
            continue
        if info.file_size > 1024 * 1024 and info.file_size > ZIP_MAX_RATIO * max(
            info.compress_size, 1
        ):
            reason = f"compressed {info.file_size // max(info.compress_size, 1)}:1: a zip bomb?"
            rejected.append(Outcome(label, name, "rejected", reason=reason))
            continue
        total += info.file_size
        if total > ZIP_MAX_TOTAL_BYTES:
            reason = f"the archive holds over {ZIP_MAX_TOTAL_BYTES} bytes: the rest is not read"
            rejected.append(Outcome(str(archive), archive.name, "rejected", reason=reason))
            break

        def opener(archive: Path = archive, entry: str = info.filename) -> IO[bytes]:
            zf = zipfile.ZipFile(archive)  # one per reader: threads read members in parallel
            handle = zf.open(entry)
            handle_close = handle.close

            def close() -> None:
                handle_close()
                zf.close()

            handle.close = close  # type: ignore[method-assign]
            return handle

        out.append(Source(label, name, info.file_size, opener))
    return out


def collect(paths: list[Path], limits: Limits) -> tuple[list[Source], list[Outcome]]:
    """The files to upload from files, folders (recursively) and .zip archives."""
    namer = _Namer()
    sources: list[Source] = []
    rejected: list[Outcome] = []

    def add_file(path: Path, parts: list[str]) -> None:
        if path.suffix.lower() == ".zip":
            sources.extend(_zip_sources(path, parts, namer, limits, rejected))
            return
        name = namer(parts)
        sources.append(Source(str(path), name, path.stat().st_size, lambda p=path: p.open("rb")))

    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _is_junk([d]))
                for fname in sorted(files):
                    full = Path(root) / fname
                    rel = full.relative_to(path).parts
                    if _is_junk(rel) or full.is_symlink():
                        continue
                    add_file(full, list(rel))
        elif path.is_file():
            add_file(path, [] if path.suffix.lower() == ".zip" else [path.name])
        else:
            rejected.append(Outcome(str(path), path.name, "failed", reason="no such file"))
    kept = []
    for src in sources:
        ext = PurePosixPath(src.name).suffix.lower()
        content_type = limits["extensions"].get(ext)
        if content_type is None:
            reason = f"not an image type the service accepts ({ext or 'no extension'})"
        elif src.size == 0:
            reason = "an empty file"
        elif src.size > limits["max_upload_bytes"]:
            reason = f"{src.size} bytes, over the limit of {limits['max_upload_bytes']}"
        else:
            src.content_type = content_type
            kept.append(src)
            continue
        rejected.append(Outcome(src.label, src.name, "rejected", reason=reason))
    return kept, rejected


def sha256_of(src: Source, progress: Progress | None = None) -> str:
    digest = hashlib.sha256()
    with src.opener() as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------- the journal
def default_journal(api_url: str) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "imgsvc" / f"journal-{hashlib.sha256(api_url.encode()).hexdigest()[:16]}.json"


class Journal:
    """Files sent but not yet settled, and rejections, by sha256; rewritten atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.sent: dict[str, dict[str, str]] = {}
        self.rejected: dict[str, str] = {}
        try:
            data = json.loads(path.read_text())
            self.sent, self.rejected = dict(data["sent"]), dict(data["rejected"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no journal yet, or an unreadable one: start afresh

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"sent": self.sent, "rejected": self.rejected}, indent=1))
        os.replace(tmp, self.path)

    def mark_sent(self, sha: str, upload_id: str, filename: str) -> None:
        with self.lock:
            self.sent[sha] = {"upload_id": upload_id, "filename": filename}
            self.save()

    def settle(self, outcomes: dict[str, Outcome]) -> None:
        with self.lock:
            for sha, outcome in outcomes.items():
                self.sent.pop(sha, None)
                if outcome.status == "rejected" and outcome.reason:
                    self.rejected[sha] = outcome.reason
                elif outcome.status in ("created", "duplicate"):
                    self.rejected.pop(sha, None)
            self.save()


# ---------------------------------------------------------------------- the engine
@contextmanager
def _pool(jobs: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool that drops its queued work on Ctrl-C instead of finishing it first."""
    pool = ThreadPoolExecutor(max(1, jobs))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _from_state(src: Source, state: dict[str, Any]) -> Outcome:
    if state["status"] == "done":
        status = "duplicate" if state.get("duplicate") else "created"
        return Outcome(src.label, src.name, status, image_id=state["image_id"])
    return Outcome(src.label, src.name, "rejected", reason=state.get("error") or "rejected")


def upload(
    client: Client,
    paths: list[Path],
    *,
    jobs: int = 4,
    journal: Journal | None = None,
    retry_rejected: bool = False,
    progress: Progress | None = None,
    wait_timeout: float = 600.0,
) -> Summary:
    """Upload everything under ``paths`` that the library does not hold yet."""
    progress = progress or Progress()
    limits = client.limits()
    sources, outcomes = collect(paths, limits)
    for o in outcomes:
        progress.file_done(o)
    summary = Summary(outcomes)
    lock = threading.Lock()

    def record(outcome: Outcome) -> None:
        with lock:
            summary.outcomes.append(outcome)
        progress.file_done(outcome)

    # 1. hash everything (reads each file once; nothing is sent)
    progress.phase("hashing", len(sources), sum(s.size for s in sources))
    with _pool(jobs) as pool:
        futures = {pool.submit(sha256_of, s): s for s in sources}
        for future in as_completed(futures):
            src = futures[future]
            try:
                src.sha256 = future.result()
            except (OSError, zipfile.BadZipFile, EOFError) as err:
                src.sha256 = ""
                record(Outcome(src.label, src.name, "failed", reason=f"cannot read: {err}"))
            progress.advance(src.size)
            progress.step()
    sources = [s for s in sources if s.sha256]

    # 2. the same content twice in this run is sent once
    primary: dict[str, Source] = {}
    copies: list[Source] = []
    for src in sources:
        if src.sha256 in primary:
            copies.append(src)
        else:
            primary[src.sha256] = src

    # 3. ask the service which it already holds
    existing = client.lookup(list(primary)) if primary else set()
    known: dict[str, Outcome] = {}
    for sha in existing:
        src = primary.pop(sha)
        known[sha] = Outcome(
            src.label, src.name, "duplicate", image_id=sha, reason="in the library"
        )
        record(known[sha])
    if journal is not None and known:
        journal.settle(known)  # whatever an earlier run sent of these has been processed
    settled: dict[str, Outcome] = {}
    # 4. the journal: rejected earlier, or sent earlier and perhaps still being processed
    if journal is not None:
        if not retry_rejected:
            for sha in [s for s in primary if s in journal.rejected]:
                src = primary.pop(sha)
                reason = f"{journal.rejected[sha]} (an earlier run; --retry-rejected sends it)"
                record(Outcome(src.label, src.name, "rejected", reason=reason))
        by_upload: dict[str, list[tuple[str, str]]] = {}
        for sha in [s for s in primary if s in journal.sent]:
            entry = journal.sent[sha]
            by_upload.setdefault(entry["upload_id"], []).append((sha, entry["filename"]))
        for upload_id, entries in by_upload.items():
            try:
                states = client.wait_upload(
                    upload_id, {f for _, f in entries}, timeout=wait_timeout
                )
            except (ApiError, TimeoutError):
                continue  # the session is gone or stuck: send those files again
            for sha, filename in entries:
                if filename in states and states[filename]["status"] != "pending":
                    src = primary.pop(sha)
                    outcome = _from_state(src, states[filename])
                    settled[sha] = outcome
                    record(outcome)
        if settled:
            journal.settle(settled)

    # 5. send the rest: a session per request-sized chunk, files in parallel
    todo = list(primary.values())
    progress.phase("uploading", len(todo), sum(s.size for s in todo))
    chunk_size = limits["max_files_per_request"]
    sent: dict[str, list[Source]] = {}

    def send(upload_id: str, post: Any, src: Source) -> Source:
        client.post_file(
            post, opener=src.opener, size=src.size, content_type=src.content_type,
            progress=progress.advance,
        )  # fmt: skip
        with lock:
            summary.files_sent += 1
            summary.bytes_sent += src.size
        if journal is not None:
            journal.mark_sent(src.sha256, upload_id, src.name)
        progress.step()
        return src

    with _pool(jobs) as pool:
        futures = {}
        for start in range(0, len(todo), chunk_size):
            chunk = todo[start : start + chunk_size]
            specs: list[FileSpec] = [
                {"filename": s.name, "content_type": s.content_type, "size": s.size} for s in chunk
            ]
            try:
                session = client.create_upload(specs)
            except ApiError as err:
                for src in chunk:
                    record(Outcome(src.label, src.name, "failed", reason=str(err)))
                continue
            sent[session["upload_id"]] = []
            for post, src in zip(session["files"], chunk, strict=True):
                futures[pool.submit(send, session["upload_id"], post, src)] = (
                    session["upload_id"],
                    src,
                )
        for future in as_completed(futures):
            upload_id, src = futures[future]
            try:
                future.result()
                sent[upload_id].append(src)
            except Exception as err:  # one file's failure is reported, the batch goes on
                record(Outcome(src.label, src.name, "failed", reason=f"send failed: {err}"))

    # 6. wait for the service's verdict on each file sent
    for upload_id, srcs in sent.items():
        if not srcs:
            continue
        names = {s.name: s for s in srcs}
        try:
            states = client.wait_upload(upload_id, set(names), timeout=wait_timeout)
        except (ApiError, TimeoutError) as err:
            for src in srcs:
                record(Outcome(src.label, src.name, "failed", reason=f"no verdict: {err}"))
            continue
        done: dict[str, Outcome] = {}
        for name, src in names.items():
            outcome = _from_state(src, states[name])
            done[src.sha256] = outcome
            record(outcome)
        if journal is not None:
            journal.settle(done)

    # 7. copies inside this run share the verdict of the file that was sent
    by_sha = {o.image_id: o for o in summary.outcomes if o.image_id and o.status != "rejected"}
    verdicts = {s.sha256: o for s in sources for o in summary.outcomes if o.label == s.label}
    for src in copies:
        first = verdicts.get(src.sha256)
        if first is not None and first.status == "rejected":
            record(Outcome(src.label, src.name, "rejected", reason=first.reason))
        elif src.sha256 in by_sha or (first and first.status in ("created", "duplicate")):
            record(
                Outcome(
                    src.label, src.name, "duplicate", image_id=src.sha256,
                    reason=f"same content as {first.label if first else 'another file'}",
                )
            )  # fmt: skip
        else:
            reason = first.reason if first else "its twin was not uploaded"
            record(Outcome(src.label, src.name, "failed", reason=reason))
    return summary
