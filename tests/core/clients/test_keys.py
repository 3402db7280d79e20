from urllib.parse import unquote

import pytest

from p2c_core.clients.keys import key_segment, literal


@pytest.mark.parametrize(
    ("value", "expected"),
    [("O'Brien", "'O''Brien'"), ("''", "''''''"), (3, "3"), (True, "true"), (None, "null"), (2.5, "2.5")],
)
def test_literal_escapes_quotes_and_types(value, expected):
    assert literal(value) == expected


def test_key_segment_percent_encodes_unsafe_characters():
    seg = key_segment("CustomersV3", {"dataAreaId": "usmf", "CustomerAccount": "A/B#1 %&+?é'"})
    assert "/" not in seg and "#" not in seg and "?" not in seg and " " not in seg and "&" not in seg
    assert "+" not in seg  # a literal + would read as a space on some servers
    assert unquote(seg) == "CustomersV3(dataAreaId='usmf',CustomerAccount='A/B#1 %&+?é''')"


def test_key_segment_guid_and_rejects_non_guid():
    guid = "5531d753-95af-e711-a94e-000d3a11e605"
    assert key_segment("accounts", guid) == f"accounts({guid})"
    with pytest.raises(ValueError, match="not a GUID"):
        key_segment("accounts", "nope")
