"""A simulation of DynamoDB's write contention rules, in virtual time.

Two cores and moto cannot show what a hundred concurrent Lambda ingests do to a real table:
moto serialises everything and neither conflicts nor throttles. This models the rules that
decide the ceiling, and nothing else (written by hand: no library simulates DynamoDB's
transaction and partition rules):

- Item conflicts: a transaction holds every item it writes or checks from its start until it
  completes; a transaction that starts while another holds one of its items is cancelled
  (``TransactionCanceledException`` with reason ``TransactionConflict``) and holds nothing.
- Partition write budget: each partition key (base table or GSI partition) refills
  ``partition_wcu_per_s`` write units a second into a bucket of ``burst_seconds`` worth. A
  transaction whose writes do not fit is cancelled (reason ``ThrottlingError``), spending
  nothing. A transactional write costs 2 WCU per started KB of item, a ConditionCheck none,
  an index write 1 WCU per KB in its own GSI partition.
- Retries: the service's own loop (``records._TXN_ATTEMPTS`` attempts, waiting
  ``records.retry_delay`` between them); when that gives up the invocation fails and Lambda
  runs it again after ``lambda_retry_delays`` (asynchronous invocation: twice, after about
  one and two minutes), repeating the work before the transaction; then it is dead-lettered.
- Concurrency: ``concurrency`` Lambda instances in a closed loop over the queue of events.

Everything is deterministic for a seed. Times are virtual seconds.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any

KB = 1024


@dataclass(frozen=True)
class Txn:
    """What one ingest's transaction touches: items it holds, and WCU per partition."""

    items: tuple[tuple[str, str], ...]  # in request order, as CancellationReasons are
    wcu: tuple[tuple[str, int], ...]  # (partition, write units)


def _attr_size(value: Any) -> int:
    """DynamoDB's size of an attribute value (strings by UTF-8 length, numbers ~ digits)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, int | float):
        return len(str(value)) // 2 + 1
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + _attr_size(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(_attr_size(v) for v in value)
    return len(str(value).encode())


def item_size(item: dict[str, Any]) -> int:
    """Bytes of an item as DynamoDB counts them: attribute names plus values."""
    return sum(len(name.encode()) + _attr_size(value) for name, value in item.items())


def txn_from_items(transact_items: Iterable[dict[str, Any]]) -> Txn:
    """The Txn of a TransactWriteItems request (boto3 resource-style values, as records
    builds them), with GSI1 writes for items that carry GSI1PK."""
    items: list[tuple[str, str]] = []
    wcu: Counter[str] = Counter()
    for entry in transact_items:
        (op, body), *_ = entry.items()
        if op == "Put":
            key = (body["Item"]["PK"], body["Item"]["SK"])
            size = item_size(body["Item"])
            if "GSI1PK" in body["Item"]:
                wcu[f"GSI1:{body['Item']['GSI1PK']}"] += math.ceil(size / KB)
        else:
            key = (body["Key"]["PK"], body["Key"]["SK"])
            # An update's written item: its key, a counter or a few status fields.
            size = item_size(body["Key"]) + sum(
                _attr_size(v) for v in body.get("ExpressionAttributeValues", {}).values()
            )
        items.append(key)
        if op != "ConditionCheck":
            wcu[f"TABLE:{key[0]}"] += 2 * math.ceil(size / KB)
    return Txn(tuple(items), tuple(sorted(wcu.items())))


@dataclass(frozen=True)
class Rules:
    partition_wcu_per_s: float = 1000.0
    burst_seconds: float = 0.05  # a partition's hard limit leaves little room to burst
    txn_seconds: float = 0.025  # a transaction holds its items this long
    cancel_seconds: float = 0.010  # a cancelled transaction answers this fast
    work_seconds: float = 0.2  # mean work before the transaction (~ a 12 Mpx ingest here)
    attempts: int = 6
    retry_delay: Callable[[int, random.Random], float] = lambda a, rng: 0.05 * 2**a
    lambda_retry_delays: tuple[float, ...] = (60.0, 120.0)
    # Cancellation reasons the retry loop retries (records._RETRYABLE in the bench).
    retryable: frozenset[str] = frozenset({"TransactionConflict", "ThrottlingError"})


@dataclass
class Result:
    images: int
    concurrency: int
    seconds: float = 0.0
    committed: int = 0
    dead_lettered: int = 0
    conflicts: int = 0
    throttles: int = 0
    retries: int = 0  # transaction retries inside an invocation
    lambda_retries: int = 0
    item_writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    partition_wcu: Counter[str] = field(default_factory=Counter)
    peak_wcu_per_s: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.committed / self.seconds if self.seconds else 0.0

    def per_image(self, n: int) -> float:
        return n / self.images

    def hottest_item(self) -> tuple[tuple[str, str], float]:
        """The item most ingests wrote, and the share of committed ingests that wrote it."""
        key, n = self.item_writes.most_common(1)[0]
        return key, n / max(self.committed, 1)

    def hottest_partition(self) -> tuple[str, float, float]:
        """The partition with the highest peak: (name, peak WCU/s, WCU per committed image)."""
        name = max(self.peak_wcu_per_s, key=lambda p: (self.peak_wcu_per_s[p], p))
        return name, self.peak_wcu_per_s[name], self.partition_wcu[name] / max(self.committed, 1)


class _Bucket:
    def __init__(self, rate: float, capacity: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.at = capacity, 0.0

    def take(self, now: float, amount: int) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if amount > self.tokens:
            return False
        self.tokens -= amount
        return True


Step = tuple[str, Any]


class Simulation:
    """Concurrent ingests of ``txns`` (one transaction each) under ``rules``."""

    def __init__(
        self, txns: list[Txn], concurrency: int, rules: Rules | None = None, seed: int = 0
    ) -> None:
        self.txns, self.concurrency = txns, concurrency
        self.rules = rules or Rules()
        self.rng = random.Random(seed)
        self.held: dict[tuple[str, str], float] = {}  # item -> when its holder completes
        self.buckets: dict[str, _Bucket] = {}
        self.windows: dict[str, Counter[int]] = defaultdict(Counter)  # WCU per 1 s window
        self.result = Result(images=len(txns), concurrency=concurrency)

    # --- the rules ---------------------------------------------------------------------------

    def transact(self, now: float, txn: Txn) -> list[str] | None:
        """Start a transaction at ``now``: None if it commits, else its CancellationReasons
        codes, one per item in request order, as DynamoDB reports them."""
        if any(self.held.get(item, -1.0) > now for item in txn.items):
            self.result.conflicts += 1
            return [
                "TransactionConflict" if self.held.get(item, -1.0) > now else "None"
                for item in txn.items
            ]
        rules = self.rules
        buckets = [
            self.buckets.setdefault(
                p,
                _Bucket(rules.partition_wcu_per_s, rules.partition_wcu_per_s * rules.burst_seconds),
            )
            for p, _ in txn.wcu
        ]
        for bucket in buckets:  # refill to now before deciding
            bucket.take(now, 0)
        if any(w > b.tokens for (_, w), b in zip(txn.wcu, buckets, strict=True)):
            self.result.throttles += 1
            return ["ThrottlingError"] * len(txn.items)
        for (partition, w), bucket in zip(txn.wcu, buckets, strict=True):
            bucket.take(now, w)
            self.result.partition_wcu[partition] += w
            self.windows[partition][int(now)] += w
        done = now + rules.txn_seconds
        for item in txn.items:
            self.held[item] = done
            self.result.item_writes[item] += 1
        return None

    def invocation(self, txn: Txn) -> Generator[Step, Any, bool]:
        """One Lambda invocation of an ingest: the work, then the transaction with retries."""
        rules = self.rules
        yield ("sleep", rules.work_seconds * self.rng.uniform(0.5, 1.5))
        for attempt in range(rules.attempts):
            reasons = yield ("transact", txn)
            if reasons == "committed":
                return True
            if not rules.retryable & set(reasons):
                return False  # the service raises: the invocation fails
            if attempt + 1 < rules.attempts:
                self.result.retries += 1
                yield ("sleep", rules.retry_delay(attempt, self.rng))
        return False

    # --- the scheduler -----------------------------------------------------------------------

    def run(self) -> Result:
        rules, result = self.rules, self.result
        fresh = deque((i, 0) for i in range(len(self.txns)))  # (ingest, Lambda attempt)
        retry_at: list[tuple[float, int, int]] = []  # (due, ingest, Lambda attempt)
        events: list[tuple[float, int, int, Any]] = []  # (time, seq, worker, value sent)
        seq = itertools.count()
        running: dict[int, tuple[Generator[Step, Any, bool], int, int]] = {}
        idle: list[int] = []  # workers with nothing to do (until a Lambda retry is queued)
        now = 0.0

        def start(worker: int, at: float) -> None:
            """Give the worker its next event, or wake it when a Lambda retry falls due."""
            if retry_at and (retry_at[0][0] <= at or not fresh):
                due, ingest, attempt = heapq.heappop(retry_at)
                if due > at:
                    heapq.heappush(retry_at, (due, ingest, attempt))
                    heapq.heappush(events, (due, next(seq), worker, "wake"))
                    return
            elif fresh:
                ingest, attempt = fresh.popleft()
            else:
                idle.append(worker)
                return
            running[worker] = (self.invocation(self.txns[ingest]), ingest, attempt)
            heapq.heappush(events, (at, next(seq), worker, None))

        for worker in range(self.concurrency):
            start(worker, 0.0)
        while events:
            now, _, worker, value = heapq.heappop(events)
            if value == "wake":
                start(worker, now)
                continue
            gen, ingest, attempt = running[worker]
            try:
                kind, arg = gen.send(value)
            except StopIteration as stop:
                del running[worker]
                if stop.value:
                    result.committed += 1
                elif attempt < len(rules.lambda_retry_delays):
                    result.lambda_retries += 1
                    due = now + rules.lambda_retry_delays[attempt]
                    heapq.heappush(retry_at, (due, ingest, attempt + 1))
                    if idle:
                        heapq.heappush(events, (due, next(seq), idle.pop(), "wake"))
                else:
                    result.dead_lettered += 1
                start(worker, now)
                continue
            if kind == "sleep":
                heapq.heappush(events, (now + arg, next(seq), worker, "slept"))
            else:
                reasons = self.transact(now, arg)
                took = rules.txn_seconds if reasons is None else rules.cancel_seconds
                heapq.heappush(events, (now + took, next(seq), worker, reasons or "committed"))
        result.seconds = now
        result.peak_wcu_per_s = {p: max(w.values()) for p, w in self.windows.items()}
        return result
