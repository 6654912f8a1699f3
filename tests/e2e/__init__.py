"""End-to-end tests (a package so its module names differ from tests/unit's)."""
