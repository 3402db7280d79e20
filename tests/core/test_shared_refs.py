"""Reference ids shared by instances in a table of their own, on Azurite, on a clock."""

from __future__ import annotations

import logging

import pytest

from p2c_core.shared_refs import FOUND, PENDING, Found, RefTable, SharedRefs, partition, row_key

ORG = "https://org.crm.dynamics.com"
UNIT = ("dataverse", "uoms", "name", "ea")

# Stands for what an exception of the storage SDK may say (a request URL, a header): never logged.
ERROR_DETAIL = "detail-of-the-storage-error-7f3a"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def shared(table: RefTable, clock: Clock, org: str = ORG) -> SharedRefs:
    return SharedRefs(lambda: table, org, clock=clock, sleep=clock.sleep)


class Sales:
    """What would be asked of Sales: counted."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked = 0

    def __call__(self) -> str | None:
        self.asked += 1
        return self.answer


def test_an_id_one_instance_found_is_read_by_another_until_the_ttl(table: RefTable):
    clock = Clock()
    a, b, other_org = shared(table, clock), shared(table, clock), shared(table, clock, "https://other.crm")
    sales = Sales("guid-ea")
    assert a.lookup(UNIT, sales) == Found("guid-ea", clock.now)
    found_at = clock.now
    clock.now += 600
    assert b.lookup(UNIT, sales) == Found("guid-ea", found_at)  # since when it is known: as found
    assert sales.asked == 1
    assert other_org.lookup(UNIT, Sales("guid-other")).id == "guid-other"  # another org's ids are its own
    clock.now += 301  # 901 s after it was found
    sales.answer = "guid-ea-2"
    assert b.lookup(UNIT, sales) == Found("guid-ea-2", clock.now)
    assert sales.asked == 2
    row = table.get_entity(partition(ORG), row_key(UNIT))
    assert (row["state"], row["id"], row["natural"]) == (FOUND, "guid-ea-2", '["dataverse", "uoms", "name", "ea"]')


def test_keys_take_any_value_and_name_no_part_of_it(table: RefTable):
    clock = Clock()
    odd = ("dataverse", "uoms", "name", "box/2\\3#4?5\x01 ü")
    assert shared(table, clock).lookup(odd, Sales("guid-odd")).id == "guid-odd"
    assert shared(table, clock).lookup(odd, Sales("never")).id == "guid-odd"
    (row,) = [r for r in table.query_entities(f"PartitionKey eq '{partition(ORG)}'")]  # type: ignore[attr-defined]
    assert "box" not in row["RowKey"] and "org" not in row["PartitionKey"]


def test_instances_starting_together_wait_for_the_one_that_claimed_the_key(table: RefTable):
    clock = Clock()
    waiter = shared(table, clock)
    # Another instance created the key's row as pending: it is asking Sales...
    table.create_entity({"PartitionKey": partition(ORG), "RowKey": row_key(UNIT), "state": PENDING, "at": clock.now})
    claimed_at = clock.now
    polls: list[float] = []

    def poll(seconds: float) -> None:
        polls.append(seconds)
        clock.sleep(seconds)
        if len(polls) == 3:  # ... and writes what it found, as `lookup` does after its `find`
            row = {"PartitionKey": partition(ORG), "RowKey": row_key(UNIT), "natural": "[]", "at": claimed_at}
            table.upsert_entity({**row, "state": FOUND, "id": "guid-ea"})

    waiter.sleep = poll
    never = Sales("never")
    assert waiter.lookup(UNIT, never) == Found("guid-ea", claimed_at)
    assert polls == [0.1, 0.1, 0.1] and never.asked == 0  # read back every 100 ms; Sales not asked


def test_the_first_to_create_the_row_claims_it(table: RefTable):
    clock = Clock()
    first, second = shared(table, clock), shared(table, clock)
    seen: list[str] = []

    def sales() -> str:  # while the first asks Sales, its row is pending: the second's claim fails
        row = table.get_entity(partition(ORG), row_key(UNIT))
        seen.append(row["state"])
        return "guid-ea"

    assert first.lookup(UNIT, sales).id == "guid-ea"
    assert seen == [PENDING]
    assert second.lookup(UNIT, Sales("never")).id == "guid-ea"


def test_a_claim_nobody_answers_is_waited_for_at_most_two_seconds(table: RefTable):
    clock = Clock()
    table.create_entity({"PartitionKey": partition(ORG), "RowKey": row_key(UNIT), "state": PENDING, "at": clock.now})
    start = clock.now
    sales = Sales("guid-ea")
    assert shared(table, clock).lookup(UNIT, sales).id == "guid-ea"
    assert sales.asked == 1 and 2.0 <= clock.now - start <= 2.2
    # ... and written for the others.
    assert shared(table, clock).lookup(UNIT, Sales("never")).id == "guid-ea"


def test_a_claim_older_than_the_wait_is_taken_over_at_once(table: RefTable):
    clock = Clock()
    table.create_entity({"PartitionKey": partition(ORG), "RowKey": row_key(UNIT), "state": PENDING, "at": clock.now})
    clock.now += 60  # its instance stopped
    start, sales = clock.now, Sales("guid-ea")
    assert shared(table, clock).lookup(UNIT, sales).id == "guid-ea"
    assert sales.asked == 1 and clock.now == start  # claimed by its ETag, no wait


def test_a_value_sales_lacks_is_told_only_to_those_waiting_now(table: RefTable):
    clock = Clock()
    missing = Sales(None)
    assert shared(table, clock).lookup(UNIT, missing) == Found(None, clock.now)
    assert shared(table, clock).lookup(UNIT, missing).id is None and missing.asked == 1
    clock.now += 2.5
    missing.answer = "added-since"
    assert shared(table, clock).lookup(UNIT, missing).id == "added-since" and missing.asked == 2


def test_a_failed_look_up_leaves_no_claim(table: RefTable):
    clock = Clock()

    def down() -> str | None:
        raise OSError("Sales did not answer")

    with pytest.raises(OSError):
        shared(table, clock).lookup(UNIT, down)
    start, sales = clock.now, Sales("guid-ea")
    assert shared(table, clock).lookup(UNIT, sales).id == "guid-ea"
    assert sales.asked == 1 and clock.now == start  # no claim left to wait for


def test_storage_errors_never_fail_a_look_up(caplog: pytest.LogCaptureFixture):
    class Broken:
        def __getattr__(self, name: str):
            def fail(*args: object, **kwargs: object) -> None:
                raise OSError(f"storage down: {ERROR_DETAIL}")  # what a storage error may carry

            return fail

    clock = Clock()
    sales = Sales("guid-ea")
    with caplog.at_level(logging.INFO, logger="p2c.references"):
        assert SharedRefs(lambda: Broken(), ORG, clock=clock).lookup(UNIT, sales).id == "guid-ea"  # type: ignore[arg-type]
    assert sales.asked == 1
    assert "OSError" in caplog.text and ERROR_DETAIL not in caplog.text
