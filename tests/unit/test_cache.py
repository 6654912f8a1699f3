from __future__ import annotations

import contextlib
import threading

import pytest

from imgsvc.cache import LRUCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lru_evicts_least_recently_used_by_entries():
    cache: LRUCache[int] = LRUCache(max_entries=2, max_bytes=1000, ttl_seconds=60)
    cache.put("a", 1, 1)
    cache.put("b", 2, 1)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3, 1)
    assert cache.get("b") is None
    assert cache.get("a") == 1 and cache.get("c") == 3  # a used last, then c
    cache.put("d", 4, 1)
    assert cache.get("a") is None and cache.get("c") == 3


def test_lru_bounded_in_bytes():
    cache: LRUCache[str] = LRUCache(max_entries=100, max_bytes=10, ttl_seconds=60)
    cache.put("a", "x", 4)
    cache.put("b", "y", 4)
    cache.put("c", "z", 4)  # 12 bytes > 10: a goes
    assert cache.get("a") is None
    assert cache.size_bytes == 8
    assert cache.put("huge", "w", 11) is False
    assert cache.get("huge") is None and len(cache) == 2


def test_lru_entries_expire():
    clock = Clock()
    cache: LRUCache[int] = LRUCache(max_entries=10, max_bytes=100, ttl_seconds=5, clock=clock)
    cache.put("a", 1, 1)
    clock.now += 4.9
    assert cache.get("a") == 1
    clock.now += 0.2
    assert cache.get("a") is None
    assert len(cache) == 0 and cache.size_bytes == 0


def test_lru_replacing_a_key_updates_size_and_order():
    cache: LRUCache[int] = LRUCache(max_entries=10, max_bytes=100, ttl_seconds=60)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    cache.put("a", 3, 30)
    assert cache.size_bytes == 40
    assert cache.get("a") == 3
    cache.put("c", 4, 65)  # 105 bytes: the least recently used (b, not a) goes
    assert cache.get("b") is None and cache.get("a") == 3 and cache.size_bytes == 95


class MeetingClock:
    """A clock at which two threads meet: read inside put's critical section, it lets a
    second put in only if the section is not locked. With the lock the first thread's wait
    times out (the other is blocked on the lock) and both run one after the other."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=0.5)

    def __call__(self) -> float:
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait()
        return 0.0


@pytest.mark.parametrize("locked", [True, False])
def test_lru_lock_keeps_entries_and_bytes_consistent(locked, monkeypatch):
    cache: LRUCache[int] = LRUCache(
        max_entries=10, max_bytes=1000, ttl_seconds=60, clock=MeetingClock()
    )
    if not locked:  # what the test must catch: the same puts without the lock
        monkeypatch.setattr(cache, "_lock", contextlib.nullcontext())
    threads = [threading.Thread(target=cache.put, args=("k", n, 7)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    consistent = len(cache) == 1 and cache.size_bytes == 7
    assert consistent is locked


def test_lru_rejects_bad_bounds():
    with pytest.raises(ValueError):
        LRUCache(max_entries=0, max_bytes=1, ttl_seconds=1)
