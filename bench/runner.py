"""Runs every section in order; a failing section prints its error and the rest still run."""

from __future__ import annotations

import os
import platform
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import UTC, datetime

from bench import report
from bench.env import configure_environment


def main(argv: list[str] | None = None) -> int:
    """Run every section, or only those numbered in argv (`python -m bench 3 4`)."""
    wanted = {int(a) for a in (sys.argv[1:] if argv is None else argv)}
    configure_environment()  # before anything creates a boto3 client
    # Library deprecation chatter (moto, botocore) would break up the report.
    warnings.simplefilter("ignore", DeprecationWarning)

    from bench import (
        analyze,
        cli_upload,
        coldstart,
        imports,
        ingest,
        library,
        probe,
        renditions,
        scale,
    )

    shared = library.Library()
    sections: list[tuple[str, Callable[[], object]]] = [
        ("Analyze latency: cache miss vs memory hit vs shared hit", analyze.latency),
        ("Analyze bytes read: a ~20 MB JPEG", analyze.bytes_read),
        ("Analyze header probe: hostile structures vs an ordinary file", probe.run),
        ("Handler import time (cold start) per function", imports.run),
        ("Cold start vs boto3 + one client; first invocation; layer bytecode", coldstart.run),
        ("Ingest of a 12 Mpx JPEG: phases, naive baseline, S3 reads, thumbnail", ingest.run),
        ("Renditions of a 12 Mpx photo: time and size per format and width", renditions.run),
        ("GET /stats: 20 vs 2,000 images", lambda: library.stats(shared)),
        (
            "Similar images: phash index vs full scan (2,000 images)",
            lambda: library.similar(shared),
        ),
        ("Bulk upload: imgsvc upload --jobs 8 vs one at a time, and a rerun", cli_upload.run),
        ("Ingest at scale: DynamoDB contention before vs after sharding (simulated)", scale.run),
    ]

    started = time.perf_counter()
    print(f"imgsvc bench  {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")
    print(
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; AWS: moto in-process mock; HTTP: 127.0.0.1 only"
    )
    failed: list[str] = []
    try:
        for number, (title, run) in enumerate(sections, start=1):
            if wanted and number not in wanted:
                continue
            report.section(number, title)
            section_start = time.perf_counter()
            try:
                if run() is True:  # a section returns True for a problem it reported
                    failed.append(f"{number}. {title} (warning)")
            except Exception as exc:  # one section's failure must not stop the others
                failed.append(f"{number}. {title}")
                print(f"  ERROR: {type(exc).__name__}: {exc}")
                traceback.print_exc(file=sys.stdout)
            print(f"  [section took {report.ms(time.perf_counter() - section_start)}]", flush=True)
    finally:
        shared.close()

    print()
    print("=" * report.WIDTH)
    print(f"Elapsed: {report.ms(time.perf_counter() - started)}")
    if failed:
        print("Sections with errors or warnings:")
        for name in failed:
            print(f"  - {name}")
        return 1
    print("All sections completed.")
    return 0
