"""API Gateway's resource matching: static segments beat {param}, which beats {proxy+}."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote

from local_stack.spec import Route


@dataclass(frozen=True)
class Match:
    resource: str  # the matched resource path, e.g. /images/{image_id}
    path_parameters: dict[str, str]
    methods: dict[str, Route]  # every method of that resource ("ANY" included)

    def route_for(self, method: str) -> Route | None:
        return self.methods.get(method) or self.methods.get("ANY")


class RouteTable:
    def __init__(self, routes: Iterable[Route]) -> None:
        self._resources: dict[str, dict[str, Route]] = {}
        for route in routes:
            methods = self._resources.setdefault(route.path, {})
            if route.method in methods:
                other = methods[route.method].function
                raise ValueError(
                    f"{route.method} {route.path} is routed to both {other} and {route.function}"
                )
            methods[route.method] = route

    @property
    def resources(self) -> dict[str, dict[str, Route]]:
        return self._resources

    def match(self, raw_path: str) -> Match | None:
        """The most specific resource for a request path as sent (still percent-encoded)."""
        segments = _segments(raw_path)
        if segments is None:
            return None
        # Decode per segment so an encoded "/" (%2F) stays inside its parameter.
        segments = [unquote(s) for s in segments]
        best: tuple[tuple[int, ...], str, dict[str, str]] | None = None
        for resource in self._resources:
            found = _match(_segments(resource) or [], segments)
            if found is None:
                continue
            rank, params = found
            if best is None or rank < best[0]:
                best = (rank, resource, params)
        if best is None:
            return None
        return Match(best[1], best[2], self._resources[best[1]])


def _segments(path: str) -> list[str] | None:
    # API Gateway accepts one trailing slash; an empty segment inside the path matches nothing.
    trimmed = path[:-1] if path.endswith("/") and path != "/" else path
    parts = trimmed.split("/")[1:] if trimmed != "/" else []
    return None if any(p == "" for p in parts) else parts


def _match(
    pattern: list[str], segments: list[str]
) -> tuple[tuple[int, ...], dict[str, str]] | None:
    """(rank, parameters) when the resource matches: a lower rank is more specific."""
    rank: list[int] = []
    params: dict[str, str] = {}
    for i, part in enumerate(pattern):
        if part.startswith("{") and part.endswith("+}"):
            if i != len(pattern) - 1 or len(segments) <= i:
                return None
            params[part[1:-2]] = "/".join(segments[i:])
            return (*rank, 2), params
        if i >= len(segments):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = segments[i]
            rank.append(1)
        elif part == segments[i]:
            rank.append(0)
        else:
            return None
    if len(pattern) != len(segments):
        return None
    return tuple(rank), params
