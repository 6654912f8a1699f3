"""tests/unit is pure: no moto, no sockets, no servers. Tests that need them are in
tests/integration (in-process over moto, local servers) or tests/e2e (over the local stack).

Enforced here: a unit test that asks for the moto fixture or a server, or opens a socket,
fails with a message saying where it belongs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

IMPURE_FIXTURES = {"aws", "photo_server"}


@pytest.fixture(autouse=True)
def _refuse_impure(request: pytest.FixtureRequest) -> None:
    used = sorted(IMPURE_FIXTURES.intersection(request.fixturenames))
    if used:
        pytest.fail(f"a unit test may not use {used}: move it to tests/integration", pytrace=False)


@pytest.fixture(autouse=True)
def _no_sockets(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(self: socket.socket, *args: object, **kwargs: object) -> None:
        raise AssertionError(
            "a unit test opened a network connection: move it to tests/integration"
        )

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse)
    yield
