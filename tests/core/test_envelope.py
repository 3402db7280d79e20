import json

import pytest

from p2c_core.envelope import MAX_MESSAGE_BYTES, Envelope, Record, chunk, decode
from p2c_core.errors import MessageError


def test_round_trip_and_base64_fits_queue_limit():
    records = [Record(key=f"ACC-{i:05d}", version=i, data={"name": "x" * 900}) for i in range(500)]
    envelopes = list(chunk("accounts", records, max_records=100))
    assert sum(len(e.records) for e in envelopes) == 500
    for env in envelopes:
        assert len(env.encode()) <= MAX_MESSAGE_BYTES
        assert decode(env.to_json()) == env
    assert [r.key for e in envelopes for r in e.records] == [r.key for r in records]


def test_chunk_respects_record_count():
    records = [Record(key=str(i), version=1) for i in range(250)]
    assert [len(e.records) for e in chunk("accounts", records, max_records=100)] == [100, 100, 50]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (json.dumps({"v": 9, "flow": "accounts", "records": []}).encode(), "unknown message version 9"),
        (json.dumps({"v": 1, "flow": "accounts", "records": []}).encode(), "wrong shape: records"),
        (json.dumps({"v": 1, "flow": "accounts", "records": [{"key": "", "version": 1}]}).encode(), "wrong shape"),
        (json.dumps([1, 2]).encode(), "wrong shape"),
        (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", "over the 64 KB"),
    ],
)
def test_malformed_messages_raise_specific_errors(body, message):
    with pytest.raises(MessageError, match=message):
        decode(body)


def test_envelope_rejects_unknown_fields():
    with pytest.raises(MessageError, match="wrong shape"):
        decode(json.dumps({"v": 1, "flow": "a", "records": [{"key": "k", "version": 1, "x": 1}]}))
    assert Envelope(flow="a", records=[Record(key="k", version=1)]).v == 2  # signed (signing.py)


def test_records_travel_without_their_defaults_and_come_back_whole():
    plain = Record(key="A-1", version=5, data={"name": "x"})
    flagged = Record(key="Q-1", version=6, data={"quoteid": "q"}, attempt=2, lines_later=True, waiting_since=1.5)
    body = Envelope(flow="quotes", records=[plain, flagged], sent=10.0).to_json()
    raw = json.loads(body)
    assert raw["v"] == 2 and raw["sent"] == 10.0
    assert raw["records"][0] == {"key": "A-1", "version": 5, "data": {"name": "x"}}  # no op, attempt, flags
    assert decode(body).records == [plain, flagged]
