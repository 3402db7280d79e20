"""F&O digests on Azurite: beside the key map, never mixed with its entries."""

from p2c_core.state.keymap import KeyMapStore
from p2c_core.state.seen import SeenStore, seen_partition


def test_f_and_o_digests_live_beside_the_key_map_and_clear(storage):
    seen = SeenStore(storage)
    seen.mark("products", {f"P{i:04d}": f"d{i}" for i in range(150)})  # over one transaction
    got = seen.get("products")
    assert len(got) == 150 and got["P0149"] == "d149"
    assert KeyMapStore(storage).entries("products") == []  # never mixed with the key map entries
    seen.clear("products")
    assert seen.get("products") == {}


def test_digests_update_in_place_per_flow_and_keep_any_key(storage):
    seen = SeenStore(storage)
    seen.mark("products", {"A/B#1?": "d1", "東京": "d2"})
    seen.mark("products", {"A/B#1?": "d3"})
    seen.mark("variants", {"A/B#1?": "v1"})
    assert seen.get("products") == {"A/B#1?": "d3", "東京": "d2"}
    seen.clear("products")
    assert seen.get("variants") == {"A/B#1?": "v1"}


def test_the_digest_partition_is_named_after_the_flow():
    assert seen_partition("products") == "products~seen"


def test_a_company_s_digests_have_a_partition_of_their_own(storage):
    seen = SeenStore(storage)
    seen.mark("invoices", {"INV-1": "us"})
    seen.mark("invoices", {"INV-1": "de"}, "demf")  # the same number in another company
    assert seen.get("invoices") == {"INV-1": "us"} and seen.get("invoices", "demf") == {"INV-1": "de"}
    seen.clear("invoices", "demf")
    assert seen.get("invoices") == {"INV-1": "us"} and seen.get("invoices", "demf") == {}
    assert seen_partition("invoices", "demf") == "invoices~seen|demf"
