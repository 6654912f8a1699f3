"""imgsvc.aws.all_items: the one loop over paginated queries and scans."""

from __future__ import annotations

from typing import Any

from imgsvc.aws import all_items


class Pages:
    """A fake Table.query: three pages, recording what each call was asked."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(dict(kwargs))
        start = kwargs.get("ExclusiveStartKey", {"n": 0})["n"]
        items = [{"n": n} for n in range(start, min(start + kwargs.get("Limit", 2), 5))]
        page: dict[str, Any] = {"Items": items}
        if items and items[-1]["n"] < 4:
            page["LastEvaluatedKey"] = {"n": items[-1]["n"] + 1}
        return page


def test_every_page_is_read_and_the_start_key_passed_on() -> None:
    call = Pages()
    assert [i["n"] for i in all_items(call, Limit=2, IndexName="GSI1")] == [0, 1, 2, 3, 4]
    assert [c.get("ExclusiveStartKey") for c in call.calls] == [None, {"n": 2}, {"n": 4}]
    assert all(c["IndexName"] == "GSI1" for c in call.calls)


def test_the_page_size_can_grow_and_reading_stops_when_the_caller_does() -> None:
    call = Pages()
    items = all_items(call, next_limit=lambda limit: limit * 2, Limit=1)
    assert [next(items)["n"] for _ in range(2)] == [0, 1]
    assert [c["Limit"] for c in call.calls] == [1, 2]  # lazily: the second page, no third
