"""status / failures / replay / reset-cursor on real state (Azurite)."""

from __future__ import annotations

from p2c_core import ops
from p2c_core.envelope import Record, decode
from p2c_core.runtime import Runtime
from p2c_core.settings import FlowSettings, Settings
from p2c_core.state import Cursor, Failure


def runtime(storage) -> Runtime:
    s = Settings(dataverse_url="http://127.0.0.1:1", fno_url="http://127.0.0.1:2", fno_company="usmf",
                 auth_mode="none", flows={"quotes": FlowSettings(enabled=False)})  # fmt: skip
    return Runtime(settings=s, storage=storage)


def test_status_reports_cursor_queues_failures_and_health(storage):
    rt = runtime(storage)
    report = ops.status(rt)
    assert report["healthy"] is True
    assert report["flows"]["accounts"]["cursor"] == "none"
    rt.state.put_cursor(Cursor(flow="accounts", link="accounts?$deltatoken=1"))
    storage.queue("p2c-accounts").send_message(b"{}")
    record = Record(key="A-1", version=3, data={"name": "x"})
    rt.state.record_failure(Failure(flow="accounts", source_key="A-1", attempt=8, error_class="ThrottledError",
                                    message="gave up", status=429, record=record.model_dump_json()))  # fmt: skip
    report = ops.status(rt)
    accounts = report["flows"]["accounts"]
    assert report["healthy"] is False and accounts["healthy"] is False
    assert (accounts["cursor"], accounts["queue_depth"], accounts["failures"]) == ("delta", 1, 1)
    assert accounts["cursor_age_s"] is not None and accounts["cursor_age_s"] < 60
    assert ops.failures(rt, "accounts")[0]["status"] == 429
    assert ops.failures(rt, error_class="MappingError") == []
    from datetime import timedelta

    assert len(ops.failures(rt, seen_within=timedelta(hours=1))) == 1
    assert ops.failures(rt, seen_within=timedelta(seconds=0)) == []


def test_replay_re_enqueues_the_record_and_clears_the_entry(storage):
    rt = runtime(storage)
    storage.queue("p2c-accounts").clear_messages()
    record = Record(key="O'Brien/1", version=3, data={"name": "x"}, attempt=7)
    rt.state.record_failure(Failure(flow="accounts", source_key=record.key, attempt=8, error_class="MappingError",
                                    message="m", record=record.model_dump_json()))  # fmt: skip
    assert ops.replay(rt, "accounts") == {"accounts": 1}
    assert rt.state.failures("accounts") == []
    [msg] = list(storage.queue("p2c-accounts").receive_messages())
    [again] = decode(msg.content).records
    assert again.key == "O'Brien/1"
    assert again.attempt == 0 and again.replay is True


def test_reset_cursor_forgets_the_link(storage):
    rt = runtime(storage)
    rt.state.put_cursor(Cursor(flow="accounts", link="accounts?$deltatoken=1"))
    ops.reset_cursor(rt, "accounts")
    ops.reset_cursor(rt, "accounts")  # twice is fine
    assert rt.state.get_cursor("accounts").link is None
