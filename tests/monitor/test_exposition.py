"""monitor.parse_exposition / sample: the Prometheus text the server exposes, read back."""

from __future__ import annotations

import pytest

from infercore.monitor import parse_exposition, sample

TEXT = """# HELP req_total requests
# TYPE req_total counter
req_total{route="/a",code="200"} 3
req_total{route="/a",code="500"} 1
req_total{route="/b",code="200"} 2
lat_seconds_sum 0.5
"""


def test_sample_sums_matching_labels():
    parsed = parse_exposition(TEXT)
    assert sample(parsed, "req_total") == 6
    assert sample(parsed, "req_total", route="/a") == 4
    assert sample(parsed, "req_total", route="/a", code="500") == 1
    assert sample(parsed, "lat_seconds_sum") == 0.5
    assert sample(parsed, "missing") == 0.0


@pytest.mark.parametrize("parsed, name", [([1.0], "x"), ("req_total 1", "x"), (None, "x"), ({}, 3)])
def test_sample_bad_arguments_are_type_errors(parsed, name):
    with pytest.raises(TypeError, match=r"parsed|name"):  # were AttributeErrors
        sample(parsed, name)
