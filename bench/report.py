"""Printing (sections, aligned tables, units) and small timing helpers."""

from __future__ import annotations

import statistics
import textwrap
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
WIDTH = 96


def section(number: int, title: str) -> None:
    print()
    print("=" * WIDTH)
    print(f"{number}. {title}")
    print("=" * WIDTH, flush=True)


def note(text: str) -> None:
    """A paragraph, wrapped to the report's width."""
    print(textwrap.fill(text, WIDTH, initial_indent="  ", subsequent_indent="  "), flush=True)


def warning(text: str) -> None:
    print(textwrap.fill(f"WARNING: {text}", WIDTH, initial_indent="  ", subsequent_indent="    "))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], align: str | None = None) -> None:
    """Print rows under headers; align is one 'l' or 'r' per column (default: first left)."""
    cells = [[str(c) for c in row] for row in rows]
    align = align or "l" + "r" * (len(headers) - 1)
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.ljust(w) if a == "l" else v.rjust(w)
            for v, w, a in zip(values, widths, align, strict=True)
        ]
        return "  " + "  ".join(parts).rstrip()

    print(line(headers))
    print("  " + "  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    print(end="", flush=True)


# --------------------------------------------------------------------------- units


def ms(seconds: float) -> str:
    """A duration in s, ms or µs with about 3 significant digits."""
    if seconds == 0:
        return "0"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    value, unit = (seconds * 1e3, "ms") if seconds >= 1e-3 else (seconds * 1e6, "µs")
    digits = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{digits}f} {unit}"


def size(n: float) -> str:
    """Bytes as KiB/MiB, exact count alongside."""
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.2f} MiB ({int(n):,} B)"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB ({int(n):,} B)"
    return f"{int(n):,} B"


def ratio(value: float, baseline: float) -> str:
    """value / baseline as 'x0.0123' or 'x45.6'."""
    if baseline == 0:
        return "n/a"
    r = value / baseline
    return f"x{r:.3g}" if r < 10 else f"x{r:,.0f}" if r >= 100 else f"x{r:.1f}"


def times_faster(slow: float, fast: float) -> str:
    if fast == 0:
        return "n/a"
    r = slow / fast
    return f"{r:,.0f}x faster" if r >= 100 else f"{r:.1f}x faster"


# --------------------------------------------------------------------------- timing


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
