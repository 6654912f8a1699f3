from __future__ import annotations

from imgsvc.cache import AnalysisCache, LRUCache, cached_urls, url_key
from tests.unit.test_cache import Clock


def test_analysis_cache_shared_tier_serves_other_containers(aws):
    result = {"format": "PNG", "size": "2x3", "width": 2, "height": 3, "mode": "RGB"}
    first = AnalysisCache()
    assert first.get("https://example.com/a.png") == (None, "miss")
    first.put("https://example.com/a.png", result)
    assert first.get("https://example.com/a.png") == (result, "memory")
    # A new container: empty memory tier, same table.
    second = AnalysisCache()
    assert second.get("https://example.com/a.png") == (result, "shared")
    assert second.get("https://example.com/a.png") == (result, "memory")


def test_analysis_cache_ignores_expired_shared_items(aws, monkeypatch):
    monkeypatch.setenv("CACHE_TTL_SECONDS", "1")
    cache = AnalysisCache()
    cache.put("https://example.com/old.png", {"format": "PNG"})
    import time

    item_key = {
        "PK": f"CACHE#{url_key('https://example.com/old.png')}",
        "SK": "ANALYSIS",
    }
    aws.table.update_item(
        Key=item_key,
        UpdateExpression="SET expire_at = :t",
        ExpressionAttributeValues={":t": int(time.time()) - 1},
    )
    assert AnalysisCache().get("https://example.com/old.png") == (None, "miss")
    assert "https://example.com/old.png" not in cached_urls()


def test_cached_urls_newest_first(aws):
    cache = AnalysisCache()
    for i in range(5):
        cache.put(f"https://example.com/{i}.png", {"format": "PNG"})
    assert cached_urls() == [f"https://example.com/{i}.png" for i in reversed(range(5))]
    assert cached_urls(limit=2) == ["https://example.com/4.png", "https://example.com/3.png"]


def test_a_failed_shared_write_does_not_fail_the_caller(aws, monkeypatch):
    from botocore.exceptions import ClientError

    from imgsvc import aws as aws_clients

    table = aws_clients.table()

    def broken(**_):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")

    monkeypatch.setattr(table, "put_item", broken)
    monkeypatch.setattr(aws_clients, "table", lambda: table)
    cache = AnalysisCache()
    cache.put("https://example.com/a.png", {"format": "PNG"})
    assert cache.get("https://example.com/a.png") == ({"format": "PNG"}, "memory")


def test_a_shared_hit_keeps_the_shared_expiry(aws):
    import time

    AnalysisCache().put("https://example.com/b.png", {"format": "PNG"})
    aws.table.update_item(
        Key={"PK": f"CACHE#{url_key('https://example.com/b.png')}", "SK": "ANALYSIS"},
        UpdateExpression="SET expire_at = :t",
        ExpressionAttributeValues={":t": int(time.time()) + 2},
    )
    clock = Clock()
    cache = AnalysisCache(LRUCache(10, 10_000, 3600, clock=clock))
    assert cache.get("https://example.com/b.png")[1] == "shared"
    clock.now += 3
    assert cache.local.get("https://example.com/b.png") is None
