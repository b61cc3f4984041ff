"""escalation.models: Priority.parse, the one parser of priorities (services, selectors, API)."""

import pytest

from escalation.models import Priority


@pytest.mark.parametrize(
    "value, expected",
    [
        (Priority.HIGH, Priority.HIGH),
        (3, Priority.HIGH),
        ("3", Priority.HIGH),
        ("high", Priority.HIGH),
        ("URGENT", Priority.URGENT),
        (" low ", Priority.LOW),
    ],
)
def test_parse_accepts_a_member_a_number_or_a_code(value, expected):
    assert Priority.parse(value) is expected


@pytest.mark.parametrize("value", ["extreme", "", "9", 0, 7, None, True, 2.0, "-1"])
def test_parse_refuses_anything_else_with_a_clear_value_error(value):
    with pytest.raises(ValueError, match=r"Unknown priority .*one of: low, normal, high, urgent"):
        Priority.parse(value)
