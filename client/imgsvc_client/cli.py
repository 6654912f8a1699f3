"""``imgsvc``: the image service from a terminal (click for arguments, rich for the output).

Where to talk to: ``--api``/``--key``, else ``IMGSVC_API``/``IMGSVC_API_KEY``, else the ready
file of a running local stack (``IMGSVC_READY_FILE``, else ``.local-stack/ready.json`` in this
folder or a parent: ``make local`` writes it).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import requests
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table

from imgsvc_client import uploader
from imgsvc_client.client import ApiError, Client

READY_FILE = Path(".local-stack") / "ready.json"
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


# ---------------------------------------------------------------------- configuration
def find_ready_file(start: Path | None = None) -> Path | None:
    env = os.environ.get("IMGSVC_READY_FILE")
    if env:
        return Path(env) if Path(env).is_file() else None
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / READY_FILE).is_file():
            return folder / READY_FILE
    return None


def resolve_target(api: str | None, key: str | None) -> tuple[str, str | None]:
    api = api or os.environ.get("IMGSVC_API")
    key = key or os.environ.get("IMGSVC_API_KEY")
    if api:
        return api, key
    ready = find_ready_file()
    if ready is None:
        raise click.UsageError(
            "no API given: use --api URL --key KEY, set IMGSVC_API and IMGSVC_API_KEY, "
            "or start the local stack (make local)"
        )
    info = json.loads(ready.read_text())
    return info["api_url"], key or info["api_key"]


class State:
    def __init__(self, api: str | None, key: str | None, as_json: bool) -> None:
        self._api, self._key, self.json = api, key, as_json
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(*resolve_target(self._api, self._key))
        return self._client


def emit(state: State, data: Any, human: Callable[[], None]) -> None:
    """JSON on stdout for scripts, or the readable form."""
    if state.json:
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        human()


def command(group: click.Group, name: str | None = None) -> Callable[..., Any]:
    """A subcommand with ``--json`` and the API errors shown in words (exit status 1)."""

    def decorate(fn: Callable[..., Any]) -> Any:
        @group.command(name)
        @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
        @click.pass_obj
        @wraps(fn)
        def run(state: State, as_json: bool, **kwargs: Any) -> Any:
            state.json = state.json or as_json
            try:
                return fn(state, **kwargs)
            except ApiError as error:
                if state.json:
                    body = {"status": "error", "code": error.code, "message": error.message}
                    click.echo(json.dumps(body))
                err.print(f"[red]error:[/] {error.message} ({error.code})")
                sys.exit(1)
            except requests.RequestException as error:
                err.print(f"[red]error:[/] cannot reach the API: {error}")
                sys.exit(1)

        return run

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--api", metavar="URL", help="API URL (or IMGSVC_API; default: the local stack)")
@click.option("--key", metavar="KEY", help="API key (or IMGSVC_API_KEY)")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.version_option(package_name="imgsvc-client")
@click.pass_context
def cli(ctx: click.Context, api: str | None, key: str | None, as_json: bool) -> None:
    """The imgsvc image service from a terminal."""
    ctx.obj = State(api, key, as_json)


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def _image_table(images: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("id", "format", "size", "bytes", "camera", "name", "created"):
        table.add_column(column, overflow="fold")
    for im in images:
        table.add_row(
            im["image_id"][:12],
            im.get("format") or "",
            f"{im.get('width')}x{im.get('height')}",
            _size(im.get("bytes")),
            im.get("camera") or "",
            im.get("name") or "",
            (im.get("created_at") or "")[:19].replace("T", " "),
        )
    return table


# ---------------------------------------------------------------------- upload
class _Bar(uploader.Progress):
    """The whole batch as one rich progress bar: bytes, files, rate, time left."""

    def __init__(self, progress: RichProgress, live: bool) -> None:
        self.progress, self.live = progress, live
        self.task: TaskID | None = None
        self.lock = threading.Lock()
        self.files = 0

    def phase(self, name: str, total_files: int, total_bytes: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(name, total=total_bytes, files=0, nfiles=total_files)
        self.files = 0

    def step(self) -> None:
        with self.lock:  # worker threads call this
            self.files += 1
            if self.task is not None:
                self.progress.update(self.task, files=self.files)

    def advance(self, nbytes: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, nbytes)

    def file_done(self, outcome: uploader.Outcome) -> None:
        if self.live and outcome.status in ("rejected", "failed"):
            self.progress.console.print(
                f"[yellow]{outcome.status}[/] {outcome.label}: {outcome.reason}"
            )


@cli.command("upload")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--jobs", "-j", default=4, show_default=True, help="files sent at a time")
@click.option("--journal", type=click.Path(path_type=Path), help="resume journal file")
@click.option("--retry-rejected", is_flag=True, help="send files an earlier run saw rejected")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@click.pass_obj
def upload_cmd(
    state: State,
    paths: tuple[Path, ...],
    jobs: int,
    journal: Path | None,
    retry_rejected: bool,
    as_json: bool,
) -> None:
    """Upload files, folders (recursively) and .zip archives, skipping what the service has."""
    state.json = state.json or as_json
    client = state.client
    book = uploader.Journal(journal or uploader.default_journal(client.api_url))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]}/{task.fields[nfiles]} files"),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    show = not state.json and err.is_terminal
    with RichProgress(*columns, console=err, disable=not show, transient=True) as bar:
        try:
            summary = uploader.upload(
                client,
                list(paths),
                jobs=jobs,
                journal=book,
                retry_rejected=retry_rejected,
                progress=_Bar(bar, show),
            )
        except ApiError as error:
            err.print(f"[red]error:[/] {error.message} ({error.code})")
            sys.exit(1)
        except KeyboardInterrupt:
            err.print(f"interrupted: the next run resumes (journal {book.path})")
            sys.exit(130)
    data = summary.to_json()
    if state.json:
        click.echo(json.dumps(data, indent=2))
    else:
        problems = [o for o in summary.outcomes if o.status in ("rejected", "failed")]
        if problems:
            table = Table(title="not uploaded")
            for column in ("file", "status", "reason"):
                table.add_column(column, overflow="fold")
            for o in problems:
                table.add_row(o.label, o.status, o.reason or "")
            out.print(table)
        out.print(
            f"created {data['created']}, duplicates {data['duplicates']}, "
            f"rejected {data['rejected']}, failed {data['failed']} "
            f"(sent {data['files_sent']} files, {_size(data['bytes_sent'])})"
        )
    sys.exit(0 if summary.ok else 1)


# ---------------------------------------------------------------------- the library
@command(cli, "ls")
@click.option("--limit", default=20, show_default=True, help="images per page (1..100)")
@click.option("--cursor", help="continue from a page's next_cursor")
@click.option("--all", "everything", is_flag=True, help="every image, following the pages")
def ls_cmd(state: State, limit: int, cursor: str | None, everything: bool) -> None:
    """List the library, newest first."""
    if everything:
        images = list(state.client.iter_images(page_size=100))
        page: dict[str, Any] = {"images": images, "count": len(images), "next_cursor": None}
    else:
        page = state.client.list_images(limit, cursor)

    def human() -> None:
        out.print(_image_table(page["images"]))
        if page.get("next_cursor"):
            out.print(f"more: imgsvc ls --cursor {page['next_cursor']}")

    emit(state, page, human)


@command(cli, "get")
@click.argument("image_id")
def get_cmd(state: State, image_id: str) -> None:
    """One image's metadata."""
    image = state.client.get_image(image_id)

    def human() -> None:
        table = Table(show_header=False)
        for k, v in image.items():
            table.add_row(k, "" if v is None else str(v))
        out.print(table)

    emit(state, image, human)


@command(cli, "download")
@click.argument("image_ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="every image in the library")
@click.option(
    "--to", "dest", default=".", type=click.Path(file_okay=False, path_type=Path), show_default=True
)
def download_cmd(state: State, image_ids: tuple[str, ...], everything: bool, dest: Path) -> None:
    """Download images (by id, or --all) into a folder as <id>.<ext>."""
    if not image_ids and not everything:
        raise click.UsageError("give image ids, or --all")
    dest.mkdir(parents=True, exist_ok=True)
    client = state.client
    images = list(client.iter_images()) if everything else [client.get_image(i) for i in image_ids]
    files = []
    for im in images:
        ext = {"JPEG": "jpg"}.get(im["format"], im["format"].lower())
        path = dest / f"{im['image_id']}.{ext}"
        if path.exists() and path.stat().st_size == im["bytes"]:
            files.append({"image_id": im["image_id"], "path": str(path), "bytes": 0})
            continue  # already here
        n = client.download(im["image_id"], path)
        files.append({"image_id": im["image_id"], "path": str(path), "bytes": n})

    def human() -> None:
        for f in files:
            out.print(f"{f['path']}  ({_size(f['bytes'])} downloaded)")

    emit(state, {"files": files, "count": len(files)}, human)


@command(cli, "rm")
@click.argument("image_id", required=False)
@click.option("--all", "everything", is_flag=True, help="delete every image")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
def rm_cmd(state: State, image_id: str | None, everything: bool, yes: bool) -> None:
    """Delete one image, or all of them (asks first)."""
    if everything == bool(image_id):
        raise click.UsageError("give one image id, or --all")
    if image_id:
        answer = state.client.delete_image(image_id)
        emit(state, answer, lambda: out.print(f"deleted {answer['image_id']}"))
        return
    if not yes and not click.confirm("Delete EVERY image in the library?", err=True):
        raise click.Abort
    deleted = state.client.delete_all()
    emit(state, {"status": "deleted", "deleted": deleted}, lambda: out.print(f"deleted {deleted}"))


@command(cli, "import")
@click.argument("url")
@click.option("--name")
@click.option("--desc")
def import_cmd(state: State, url: str, name: str | None, desc: str | None) -> None:
    """Import an image from a URL into the library."""
    image = state.client.import_url(url, name, desc)
    emit(state, image, lambda: out.print(_image_table([image])))


@command(cli, "analyze")
@click.argument("url")
def analyze_cmd(state: State, url: str) -> None:
    """Format, size and mode of an image by URL (reads only its header)."""
    answer = state.client.analyze(url)
    r = answer["result"]
    emit(
        state,
        answer,
        lambda: out.print(f"{r['format']} {r['size']} {r['mode']}  (cache {answer['cache']})"),
    )


@command(cli, "history")
@click.option("--limit", default=100, show_default=True)
def history_cmd(state: State, limit: int) -> None:
    """URLs the analysis cache holds, newest first."""
    answer = state.client.history(limit)
    emit(state, answer, lambda: [out.print(u) for u in answer["cached_items"]])


@command(cli, "crop")
@click.argument("image_id")
@click.argument("box", nargs=4, type=int, metavar="LEFT TOP RIGHT BOTTOM")
def crop_cmd(state: State, image_id: str, box: tuple[int, int, int, int]) -> None:
    """A new image cut from this one (box in displayed pixels)."""
    image = state.client.crop(image_id, *box)
    emit(state, image, lambda: out.print(_image_table([image])))


@command(cli, "diff")
@click.argument("image_id")
@click.argument("other_id")
@click.option("--threshold", type=int)
def diff_cmd(state: State, image_id: str, other_id: str, threshold: int | None) -> None:
    """Perceptual-hash distance of two images."""
    answer = state.client.diff(image_id, other_id, threshold)
    verdict = "similar" if answer["similar"] else "different"
    emit(
        state,
        answer,
        lambda: out.print(
            f"distance {answer['distance']} (threshold {answer['threshold']}): {verdict}"
        ),
    )


@command(cli, "similar")
@click.argument("image_id")
@click.option("--max-distance", type=int)
@click.option("--limit", type=int)
def similar_cmd(state: State, image_id: str, max_distance: int | None, limit: int | None) -> None:
    """Images within a phash distance, nearest first."""
    answer = state.client.similar(image_id, max_distance, limit)

    def human() -> None:
        table = Table()
        for column in ("distance", "id", "format", "size", "name"):
            table.add_column(column)
        for im in answer["results"]:
            m = im
            table.add_row(
                str(m.get("distance")),
                str(im.get("image_id", ""))[:12],
                str(im.get("format") or ""),
                f"{im.get('width')}x{im.get('height')}",
                str(im.get("name") or ""),
            )
        out.print(table)

    emit(state, answer, human)


@command(cli, "ascii")
@click.argument("image_id")
@click.option("--width", type=int, help="characters (default: the terminal's width)")
def ascii_cmd(state: State, image_id: str, width: int | None) -> None:
    """The image as text art, fitted to the terminal."""
    if width is None:
        width = max(10, min(400, shutil.get_terminal_size((80, 24)).columns - 1))
    art = state.client.ascii(image_id, width)
    emit(state, {"image_id": image_id, "width": width, "ascii": art}, lambda: click.echo(art))


@command(cli, "stats")
def stats_cmd(state: State) -> None:
    """Uploads over the last 30 days as a chart, formats, top cameras."""
    stats = state.client.stats()

    def human() -> None:
        days = stats["uploads_per_day"]
        top = max(days.values(), default=0) or 1
        width = max(10, min(50, shutil.get_terminal_size((80, 24)).columns - 20))
        chart = Table(title="uploads per day (30 days)", show_header=False, box=None)
        chart.add_column(justify="right")
        chart.add_column()
        for day, n in days.items():
            chart.add_row(day[5:], "█" * round(n * width / top) + f" {n}")
        out.print(chart)
        formats = Table(title="formats")
        formats.add_column("format")
        formats.add_column("images", justify="right")
        for fmt, n in sorted(stats["formats"].items(), key=lambda kv: -kv[1]):
            formats.add_row(fmt, str(n))
        out.print(formats)
        cameras = ", ".join(stats["top_camera_models"]) or "none"
        out.print(f"top cameras: {cameras}")
        out.print(f"total images: {stats['total_images']}")

    emit(state, stats, human)


@command(cli, "status")
def status_cmd(state: State) -> None:
    """The service's version and limits (no key needed)."""
    status = state.client.status()

    def human() -> None:
        limits = status.get("limits", {})
        out.print(f"{state.client.api_url}: {status['status']}, version {status['version']}")
        for k, v in limits.items():
            shown = ", ".join(sorted(v)) if isinstance(v, dict | list) else v
            out.print(f"  {k}: {shown}")

    emit(state, status, human)


def main() -> None:
    cli(prog_name="imgsvc")


if __name__ == "__main__":
    main()
