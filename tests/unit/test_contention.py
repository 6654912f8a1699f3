"""The contention simulator's rules, and the bench's capture of what ingests write."""

from __future__ import annotations

import pytest

from bench.contention import Rules, Simulation, Txn, item_size, txn_from_items
from bench.scale import capture_ingests, legacy_layout, static_ceiling


def txn(*items: str, partition: str = "P", wcu: int = 2) -> Txn:
    return Txn(tuple((i, "X") for i in items), ((partition, wcu),))


def rules(**kw) -> Rules:
    base = {"work_seconds": 0.0, "retry_delay": lambda attempt, rng: 0.001}
    return Rules(**{**base, **kw})


def test_write_units_of_a_transaction():
    big = {"PK": "IMAGE#a", "SK": "META", "GSI1PK": "IMAGES#1", "blob": "x" * 1500}
    assert 1500 < item_size(big) <= 2048
    t = txn_from_items(
        [
            {"Put": {"Item": big}},
            {"Update": {"Key": {"PK": "STATS#SHARD#1", "SK": "TOTAL#0"}}},
            {"ConditionCheck": {"Key": {"PK": "IMAGE#b", "SK": "META"}}},
        ]
    )
    assert t.items == (("IMAGE#a", "META"), ("STATS#SHARD#1", "TOTAL#0"), ("IMAGE#b", "META"))
    # Transactional: 2 WCU per started KB; the index copy 1 WCU per KB; a check writes nothing.
    assert dict(t.wcu) == {"TABLE:IMAGE#a": 4, "GSI1:IMAGES#1": 2, "TABLE:STATS#SHARD#1": 2}


def test_overlapping_transactions_on_one_item_conflict_and_the_loser_holds_nothing():
    sim = Simulation([], 1, rules(txn_seconds=0.025))
    assert sim.transact(0.0, txn("a", "b")) is None  # committed
    # b is held until 0.025: cancelled, with a reason per item as DynamoDB gives them
    assert sim.transact(0.010, txn("c", "b")) == ["None", "TransactionConflict"]
    assert sim.transact(0.012, txn("c")) is None  # the cancelled one took no hold on c
    assert sim.transact(0.013, txn("d")) is None  # disjoint items never conflict
    assert sim.transact(0.025, txn("a")) is None  # released at completion
    assert sim.result.conflicts == 1
    assert sim.result.item_writes[("b", "X")] == 1 and sim.result.item_writes[("c", "X")] == 1


def test_a_partition_is_throttled_at_its_write_budget():
    txns = [txn(f"item{n}", wcu=2) for n in range(3000)]  # distinct items, one partition
    result = Simulation(txns, 200, rules(attempts=50, txn_seconds=0.01)).run()
    assert result.committed == 3000 and result.conflicts == 0
    assert result.throttles > 0
    burst = Rules().partition_wcu_per_s * Rules().burst_seconds
    assert result.peak_wcu_per_s["P"] <= 1000 + burst
    # 2 WCU each: 500 a second at most, so 3000 take at least 6 seconds of virtual time.
    assert result.seconds >= (3000 * 2 - burst) / 1000
    assert result.images_per_s <= 500 + burst / 2


def test_retries_then_lambda_retries_then_dead_letter():
    shared = [txn("hot"), txn("hot")]
    r = Simulation(shared, 2, rules(attempts=2, txn_seconds=1.0, lambda_retry_delays=(5.0,))).run()
    # The second is cancelled twice (attempt and retry), fails, and Lambda runs it again later.
    assert (r.committed, r.conflicts, r.retries, r.lambda_retries) == (2, 2, 1, 1)
    assert r.dead_lettered == 0 and r.seconds > 5.0
    r = Simulation(shared, 2, rules(attempts=2, txn_seconds=1.0, lambda_retry_delays=())).run()
    assert (r.committed, r.dead_lettered) == (1, 1)


def test_reasons_not_retried_fail_the_invocation_at_once():
    shared = [txn("hot"), txn("hot")]
    only_throttling = rules(
        txn_seconds=1.0, retryable=frozenset({"ThrottlingError"}), lambda_retry_delays=()
    )
    r = Simulation(shared, 2, only_throttling).run()
    assert (r.committed, r.conflicts, r.retries, r.dead_lettered) == (1, 1, 0, 1)


def test_simulation_is_deterministic_for_a_seed():
    txns = [txn(f"i{n % 7}", partition=f"P{n % 3}") for n in range(300)]
    a = Simulation(txns, 16, Rules(), seed=3).run()
    b = Simulation(txns, 16, Rules(), seed=3).run()
    assert (a.seconds, a.conflicts, a.retries, a.item_writes) == (
        b.seconds,
        b.conflicts,
        b.retries,
        b.item_writes,
    )


@pytest.fixture
def captured():
    return capture_ingests(200, stats_shards=16, stats_slots=16, index_shards=8)


def test_sharded_ingests_share_no_hot_item():
    captured = capture_ingests(2000, stats_shards=16, stats_slots=16, index_shards=8)
    new = [txn_from_items(items) for items in captured]
    old = [txn_from_items(legacy_layout(items)) for items in captured]

    def hottest_share(txns):
        counts: dict = {}
        for t in txns:
            for item in t.items:
                counts[item] = counts.get(item, 0) + 1
        return max(counts.values()) / len(txns)

    assert hottest_share(old) == 1.0  # STATS#TOTAL: every ingest
    assert hottest_share(new) < 0.05
    assert static_ceiling(new)[1] > 3 * static_ceiling(old)[1]  # 4x less sampling noise
    assert sum(w for t in new for _, w in t.wcu) == sum(w for t in old for _, w in t.wcu)
