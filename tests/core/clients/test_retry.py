import random
from datetime import UTC, datetime

from p2c_core.clients.retry import Backoff, parse_retry_after


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("garbage") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") == 0.0


def test_backoff_grows_is_capped_and_never_undercuts_retry_after():
    b = Backoff(base=1.0, cap=8.0)
    rng = random.Random(1)
    delays = [b.delay(n, rng=rng) for n in range(1, 8)]
    assert all(0.5 <= d <= 8.0 for d in delays)
    assert max(delays[4:]) > max(delays[:1])
    assert b.delay(1, retry_after=120.0, rng=rng) == 120.0
