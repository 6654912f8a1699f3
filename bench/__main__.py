"""Entry point of `python -m bench` (what `make bench` runs from the repo root)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Tests get `imgsvc` from pytest's `pythonpath` setting; bench is not run by pytest, so the
# core layer goes on sys.path here, once, before anything imports imgsvc. The repo root is
# there already under `python -m bench` from the root; added in case of another cwd.
for _path in (ROOT / "layers" / "core" / "python", ROOT, ROOT / "client"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.runner import main  # noqa: E402  (needs the sys.path set up above)

if __name__ == "__main__":
    raise SystemExit(main())
