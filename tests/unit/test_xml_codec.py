"""The XML codec's parsing of list timestamps."""

from __future__ import annotations

import pytest

from cosfs.store import xml_codec


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T00:00:00.000Z", 1_704_067_200_000_000_000),
    ("2024-02-29T23:59:59.123Z", 1_709_251_199_123_000_000),
    ("1970-01-01T00:00:00Z", 0),
])
def test_list_timestamps_are_parsed_to_nanoseconds(text, expected):
    assert xml_codec.iso_to_ns(text) == expected


@pytest.mark.parametrize("text", ["2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "garbage",
                                  "2024-01-01 00:00:00Z", "2024-01-01T24:00:00Z", "２０２４-01-01T00:00:00Z",
                                  "2024-01-01T00:00+01Z", "2024-01-01T0000+0100Z"])
def test_a_bad_list_timestamp_is_a_malformed_response(text):
    with pytest.raises(xml_codec.MalformedResponse):
        xml_codec.iso_to_ns(text)
