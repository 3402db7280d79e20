"""The pacing lease table: live instances of one identity, counted on Azurite, on a clock."""

from __future__ import annotations

from p2c_core.clients.peers import LeaseTable, TablePeers, partition


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_instances_of_one_identity_count_each_other_and_a_stopped_one_drops_out(table: LeaseTable):
    clock = Clock()
    a, b = (TablePeers(lambda: table, "https://org", "app-1", instance=i, clock=clock) for i in ("a", "b"))
    other = TablePeers(lambda: table, "https://org", "app-2", instance="c", clock=clock)
    assert a.count() == 1
    assert b.count() == 2 and other.count() == 1  # another identity has a budget of its own
    clock.now += 11
    assert a.count() == 2  # renewed; b's row is 11 s old
    clock.now += 25
    assert a.count() == 1  # b said nothing for 36 s: stopped
    assert b.count() == 2  # until it says so again


def test_the_count_is_cached_between_refreshes_and_survives_storage_errors():
    calls = []

    class Broken:
        def upsert_entity(self, entity, **kwargs):
            calls.append(entity)
            raise OSError("storage down")

        def query_entities(self, query_filter, **kwargs):
            raise AssertionError("not reached")

    clock = Clock()
    peers = TablePeers(lambda: Broken(), "https://org", "app-1", instance="a", clock=clock)
    assert peers.count() == 1 and peers.count() == 1
    assert len(calls) == 1  # within a second, no second storage request
    clock.now += 40
    peers.count()
    clock.now += 5
    assert peers.count() == 1 and len(calls) == 2  # after the first ttl, every refresh_s (10 s)
    assert "app-1" not in calls[0]["PartitionKey"] and partition("https://org", "app-1") == calls[0]["PartitionKey"]


def test_instances_say_what_an_operation_costs_and_a_row_of_before_says_nothing(table: LeaseTable):
    clock = Clock()
    a, b, c = (TablePeers(lambda: table, "https://org", "app-9", instance=i, clock=clock) for i in "abc")
    table.upsert_entity({"PartitionKey": a.partition, "RowKey": "old", "seen": clock.now})  # before costs
    a.publish(0.16)
    assert a.count() == 2 and a.cost() is None  # its own cost is not news to it; "old" says none
    b.publish(0.17)
    assert b.count() == 3 and b.cost() == 0.16
    assert c.count() == 4 and c.cost() == 0.17  # the most any live peer says: never booked too cheap
    clock.now += 40  # a, b and the old row stopped
    assert c.count() == 1 and c.cost() is None
