"""engine.replay on real state (Azurite): what a replay re-enqueues, and what it keeps."""

from __future__ import annotations

from p2c_core import engine
from p2c_core.envelope import Record, decode
from p2c_core.flows import get_flow
from p2c_core.runtime import Runtime
from p2c_core.settings import Settings
from p2c_core.state import Failure
from p2c_core.state.storage import Storage


def runtime(storage: Storage) -> Runtime:
    settings = Settings(dataverse_url="http://127.0.0.1:1", fno_url="http://127.0.0.1:2", fno_company="usmf",
                        auth_mode="none")  # fmt: skip
    return Runtime(settings=settings, storage=storage)


def failed(rt: Runtime, key: str, record: Record | None) -> None:
    rt.state.record_failure(Failure(flow="accounts", source_key=key, attempt=8, error_class="MappingError",
                                    message="m", record=record.model_dump_json() if record else None))  # fmt: skip


def queued(storage: Storage) -> list[Record]:
    messages = storage.queue(get_flow("accounts").queue).receive_messages(messages_per_page=32)
    return [r for m in messages for r in decode(m.content).records]


def test_a_40000_character_failed_record_replays_by_key(storage):
    rt = runtime(storage)
    record = Record(key="BIG-1", version=9, data={"name": "Big", "description": "d" * 40_000}, attempt=4)
    failed(rt, "BIG-1", record)
    assert len(record.model_dump_json()) > 40_000
    assert engine.replay(rt, get_flow("accounts"), {"BIG-1"}) == 1
    [again] = queued(storage)
    assert again.data == record.data
    assert (again.key, again.version, again.attempt, again.replay) == ("BIG-1", 9, 0, True)
    assert rt.state.failures("accounts") == []


def test_a_replay_by_key_with_no_stored_record_keeps_the_failure_entry(storage):
    rt = runtime(storage)
    failed(rt, "accounts(0b8a5c1e-0000-0000-0000-000000000001)", None)  # a row without its key: nothing kept
    failed(rt, "A-2", Record(key="A-2", version=1, data={"name": "x"}))
    keys = {"accounts(0b8a5c1e-0000-0000-0000-000000000001)", "A-2"}
    assert engine.replay(rt, get_flow("accounts"), keys) == 1  # only A-2 went back on the queue
    assert [r.key for r in queued(storage)] == ["A-2"]
    [kept] = rt.state.failures("accounts")
    assert kept.source_key == "accounts(0b8a5c1e-0000-0000-0000-000000000001)" and kept.message == "m"


def test_a_replay_of_a_key_that_has_no_failure_re_enqueues_nothing(storage):
    rt = runtime(storage)
    failed(rt, "A-3", Record(key="A-3", version=1))
    assert engine.replay(rt, get_flow("accounts"), {"A-4"}) == 0
    assert queued(storage) == [] and [f.source_key for f in rt.state.failures("accounts")] == ["A-3"]


def test_a_whole_flow_replay_still_clears_entries_with_no_record(storage):
    rt = runtime(storage)
    failed(rt, "message-0123456789abcdef", None)  # its message went to the poison queue
    storage.queue(get_flow("accounts").poison_queue).send_message(b"not json")
    assert engine.replay(rt, get_flow("accounts")) == 1  # the poison message, back on the queue
    assert rt.state.failures("accounts") == []
    [message] = storage.queue(get_flow("accounts").queue).receive_messages()
    assert message.content == b"not json"
