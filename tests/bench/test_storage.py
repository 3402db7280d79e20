"""The storage benchmark's counting: requests counted at the real storage client, on Azurite."""

from __future__ import annotations

from collections import Counter

from bench.storage import COSTS, SETUP, counted_storage, section, write_section
from p2c_core.state import TABLES, StateStore
from p2c_core.state.keymap import Claim


def test_each_request_counts_once_a_transaction_as_one(azurite):
    counts: Counter[str] = Counter()
    state = StateStore(counted_storage(azurite.connection_string, counts))
    state.get_entry("accounts", "A-1")  # the state tables created together (setup), then one point read
    assert counts[SETUP] == len(TABLES) and counts["table GET"] >= 1
    state.get_cursor("accounts")
    assert counts[SETUP] == len(TABLES)  # another table: created already
    counts.clear()
    from datetime import timedelta

    claimed = state.claim_new("bench", [Claim(None, f"K-{n}", 1) for n in range(50)], timedelta(seconds=30))
    keys = [c for c in claimed if c is not None]
    # 50 keys over the 4 bucket partitions: one transaction each (and a legacy look, once)
    assert len(keys) == 50 and counts["table POST"] == 4 and sum(counts.values()) <= 6


def test_the_section_replaces_its_own_part_of_the_doc_only(tmp_path, monkeypatch):
    import bench.harness

    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept above\n")
    monkeypatch.setattr(bench.harness, "DOCS", doc)
    summary = {k: 0.0 for k in ("storage_requests_per_record_initial", "storage_requests_per_record_resync",
                                "storage_requests_per_record_products", "cpu_ms_per_record",
                                "storage_latency_throughput_ratio", "idle_cost_ratio_100k_vs_100")}  # fmt: skip
    write_section(section(summary, {"x": 1}))
    write_section(section({**summary, "cpu_ms_per_record": 0.5}, {"x": 2}))
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nkept above\n") and text.count("## Storage (issue 20)") == 1
    assert '"x": 2' in text and '"x": 1' not in text and COSTS.splitlines()[0] in text
