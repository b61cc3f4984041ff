"""Business hours: open or closed, the next opening, open time added across closed hours, and
the clear errors for bad settings."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from escalation.routing import hours

BERLIN_WEEKDAYS = [
    {"day": day, "opens": "09:00", "closes": "17:00"} for day in ("mon", "tue", "wed", "thu", "fri")
]


def berlin(**extra):
    return hours.build_hours(
        time_zone="Europe/Berlin", weekly_hours=BERLIN_WEEKDAYS, holidays=extra.get("holidays", [])
    )


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def test_open_inside_the_hours_in_the_teams_zone():
    # Wednesday 2 Dec 2026: 08:30 UTC is 09:30 in Berlin (CET, UTC+1).
    assert berlin().is_open(utc(2026, 12, 2, 8, 30))
    assert not berlin().is_open(utc(2026, 12, 2, 7, 30))  # 08:30 Berlin
    assert not berlin().is_open(utc(2026, 12, 2, 16, 0))  # 17:00 Berlin: closed


def test_the_next_opening_skips_the_weekend_and_holidays():
    friday_evening = utc(2026, 12, 4, 18, 0)
    assert berlin().next_opening(friday_evening) == utc(2026, 12, 7, 8, 0)  # Monday 09:00
    closed_monday = berlin(holidays=["2026-12-07"])
    assert closed_monday.next_opening(friday_evening) == utc(2026, 12, 8, 8, 0)


def test_open_seconds_are_counted_across_the_night():
    # 30 minutes of work asked at 16:45 Berlin: 15 today, 15 tomorrow from 09:00.
    start = utc(2026, 12, 2, 15, 45)
    assert berlin().add_open_seconds(start, 1800) == utc(2026, 12, 3, 8, 15)


def test_no_hours_means_always_open():
    always = hours.build_hours(time_zone="UTC", weekly_hours=[], holidays=[])
    at = utc(2026, 12, 6, 3, 0)
    assert always.is_open(at)
    assert always.add_open_seconds(at, 60) == utc(2026, 12, 6, 3, 1)


def test_24_00_closes_at_midnight():
    late = hours.build_hours(
        time_zone="UTC",
        weekly_hours=[{"day": "wed", "opens": "20:00", "closes": "24:00"}],
        holidays=[],
    )
    assert late.is_open(utc(2026, 12, 2, 23, 59))
    assert not late.is_open(utc(2026, 12, 3, 0, 0))


@pytest.mark.parametrize(
    ("weekly", "message"),
    [
        (
            [
                {"day": "mon", "opens": "09:00", "closes": "13:00"},
                {"day": "mon", "opens": "12:00", "closes": "17:00"},
            ],
            "mon: 09:00–13:00 and 12:00–17:00 overlap",
        ),
        ([{"day": "funday", "opens": "09:00", "closes": "17:00"}], "unknown day"),
        ([{"day": "mon", "opens": "9am", "closes": "17:00"}], "is not a time like 09:00"),
        ([{"day": "mon", "opens": "17:00", "closes": "09:00"}], "must be after opens"),
        ("mon 9-5", "must be a list"),
    ],
)
def test_bad_weekly_hours_are_refused_with_a_clear_message(weekly, message):
    with pytest.raises(ValidationError) as error:
        hours.clean_weekly_hours(weekly)
    assert message in " ".join(error.value.messages)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="Unknown time zone 'Mars/Olympus'"):
        hours.parse_zone("Mars/Olympus")
    with pytest.raises(ValidationError):
        hours.parse_zone("../../etc/passwd")
    assert hours.parse_zone("Europe/Berlin").key == "Europe/Berlin"


def test_hours_text_round_trips_and_names_the_bad_line():
    text = "mon 09:00-17:00\ntue 09:00-12:00\n\ntue 13:00-17:00"
    weekly = hours.hours_from_text(text)
    assert hours.hours_as_text(weekly) == "mon 09:00-17:00\ntue 09:00-12:00\ntue 13:00-17:00"
    with pytest.raises(ValidationError, match="Line 2"):
        hours.hours_from_text("mon 09:00-17:00\nevery day")


def test_bad_holidays_are_refused():
    with pytest.raises(ValidationError, match="not a date"):
        hours.clean_holidays(["Christmas"])
    assert hours.clean_holidays(["2026-12-26", "2026-12-25", "2026-12-25"]) == [
        "2026-12-25",
        "2026-12-26",
    ]
