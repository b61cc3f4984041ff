"""Business hours: a team's time zone, weekly opening hours and holidays, as plain values.

Pure functions (no database): is the team open at an instant, when does it open next, and what
instant lies N seconds of open time after another (the wait estimate and the SLA clock both
count open time only). Validation lives here too, so forms, the admin and the API give the same
errors for the same bad input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Looking further than this for an opening means the team never opens (every day a holiday).
HORIZON_DAYS = 400
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
END_OF_DAY = time.max


@dataclass(frozen=True)
class Hours:
    """Opening hours in one time zone. No weekly intervals means open around the clock."""

    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    weekly: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def always_open(self) -> bool:
        return not self.weekly and not self.holidays

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """That local day's open intervals as aware datetimes (none on a holiday)."""
        if day in self.holidays:
            return []
        spans = self.weekly.get(day.weekday(), ()) if self.weekly else ((time.min, END_OF_DAY),)
        result = []
        for opens, closes in spans:
            start = datetime.combine(day, opens, self.zone)
            end = (
                datetime.combine(day + timedelta(days=1), time.min, self.zone)
                if closes == END_OF_DAY
                else datetime.combine(day, closes, self.zone)
            )
            result.append((start, end))
        return result

    def _intervals_from(self, at: datetime):
        """Open intervals that end after ``at``, in order, for up to HORIZON_DAYS."""
        day = at.astimezone(self.zone).date() - timedelta(days=1)
        for offset in range(HORIZON_DAYS):
            for start, end in self.intervals_on(day + timedelta(days=offset)):
                if end > at:
                    yield start, end

    def is_open(self, at: datetime) -> bool:
        if self.always_open:
            return True
        return any(start <= at < end for start, end in self.intervals_on_around(at))

    def intervals_on_around(self, at: datetime):
        local = at.astimezone(self.zone).date()
        for day in (local - timedelta(days=1), local):
            yield from self.intervals_on(day)

    def next_opening(self, at: datetime) -> datetime | None:
        """``at`` itself when open, else the start of the next open interval (None: never)."""
        if self.always_open:
            return at
        for start, _end in self._intervals_from(at):
            return max(start, at)
        return None

    def reopening_between(self, since: datetime, until: datetime) -> datetime | None:
        """The last time the team opened after being closed, after ``since`` and by ``until``
        (an instant of open time, as ``add_open_seconds`` returns); None when it stays open
        from ``since`` to ``until``. Back-to-back intervals (Monday to 24:00, Tuesday from
        00:00) are one open stretch, not a reopening."""
        if self.always_open:
            return None
        opened, closed = None, None
        for opens, closes in self._intervals_from(since):
            if opens > until:
                break
            if opens > since and opens != closed:
                opened = opens
            closed = closes
        return opened

    def add_open_seconds(self, start: datetime, seconds: float) -> datetime | None:
        """The instant after ``seconds`` of open time counted from ``start`` (None: never)."""
        if self.always_open:
            return start + timedelta(seconds=seconds)
        left = timedelta(seconds=max(0.0, seconds))
        for opens, closes in self._intervals_from(start):
            opens = max(opens, start)
            if opens + left <= closes:
                return opens + left
            left -= closes - opens
        return None


def _clock(text: str, where: str) -> time:
    if not isinstance(text, str) or not _CLOCK.match(text.strip()):
        raise ValidationError(
            _("%(where)s: %(value)r is not a time like 09:00 (24:00 ends the day).")
            % {"where": where, "value": text}
        )
    text = text.strip()
    if text == "24:00":
        return END_OF_DAY
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def parse_zone(name) -> ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(_("Give a time zone, e.g. Europe/Berlin."))
    name = name.strip()
    # available_timezones() rather than ZoneInfo(name) alone: it also refuses paths like "../x".
    if name not in _zones():
        raise ValidationError(
            _("Unknown time zone %(zone)r: use an IANA name such as Europe/Berlin or UTC.")
            % {"zone": name}
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("Unknown time zone %(zone)r.") % {"zone": name}) from None


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


def clean_weekly_hours(value) -> list[dict]:
    """``[{"day": "mon", "opens": "09:00", "closes": "17:00"}, ...]`` checked and normalised
    (sorted by day and time). Raises ValidationError naming the bad entry: an unknown day, a
    malformed time, closing before opening, two intervals of one day overlapping."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError(_("Weekly hours must be a list of {day, opens, closes}."))
    rows = []
    for index, entry in enumerate(value, start=1):
        if not isinstance(entry, dict) or set(entry) - {"day", "opens", "closes"}:
            raise ValidationError(
                _("Weekly hours, entry %(n)d: give exactly day, opens and closes.") % {"n": index}
            )
        day = str(entry.get("day", "")).strip().lower()[:3]
        if day not in DAYS:
            raise ValidationError(
                _("Weekly hours, entry %(n)d: unknown day %(day)r (mon … sun).")
                % {"n": index, "day": entry.get("day")}
            )
        where = _("Weekly hours, %(day)s") % {"day": day}
        opens = _clock(entry.get("opens"), where)
        closes = _clock(entry.get("closes"), where)
        if opens >= closes:
            raise ValidationError(
                _("%(where)s: closes (%(closes)s) must be after opens (%(opens)s).")
                % {"where": where, "opens": entry.get("opens"), "closes": entry.get("closes")}
            )
        rows.append((DAYS.index(day), opens, closes))
    rows.sort()
    for (day_a, opens_a, closes_a), (day_b, opens_b, closes_b) in zip(rows, rows[1:], strict=False):
        if day_a == day_b and opens_b < closes_a:
            raise ValidationError(
                _("Weekly hours, %(day)s: %(a)s and %(b)s overlap.")
                % {
                    "day": DAYS[day_a],
                    "a": f"{_fmt(opens_a)}–{_fmt(closes_a)}",
                    "b": f"{_fmt(opens_b)}–{_fmt(closes_b)}",
                }
            )
    return [{"day": DAYS[d], "opens": _fmt(o), "closes": _fmt(c)} for d, o, c in rows]


def clean_holidays(value) -> list[str]:
    """``["2026-12-25", ...]``: ISO dates, sorted, each once."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        raise ValidationError(_("Holidays must be a list of dates like 2026-12-25."))
    days = set()
    for entry in value:
        try:
            days.add(date.fromisoformat(str(entry).strip()))
        except ValueError:
            raise ValidationError(
                _("Holiday %(value)r is not a date like 2026-12-25.") % {"value": entry}
            ) from None
    return [d.isoformat() for d in sorted(days)]


def _fmt(clock: time) -> str:
    return "24:00" if clock == END_OF_DAY else clock.strftime("%H:%M")


def build_hours(*, time_zone: str, weekly_hours: list, holidays: list) -> Hours:
    """Hours from stored (already validated) values; a stored bad zone falls back to UTC."""
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    weekly: dict[int, list[tuple[time, time]]] = {}
    for entry in weekly_hours or []:
        weekly.setdefault(DAYS.index(entry["day"]), []).append(
            (_clock(entry["opens"], ""), _clock(entry["closes"], ""))
        )
    return Hours(
        zone=zone,
        weekly={day: tuple(spans) for day, spans in weekly.items()},
        holidays=frozenset(date.fromisoformat(d) for d in holidays or []),
    )


def hours_as_text(weekly_hours: list) -> str:
    """One line per interval, "mon 09:00-17:00": what the Settings form shows and reads."""
    return "\n".join(f"{e['day']} {e['opens']}-{e['closes']}" for e in weekly_hours or [])


def hours_from_text(text: str) -> list[dict]:
    """The Settings form's lines back into weekly hours (validated by clean_weekly_hours)."""
    rows = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        match = re.match(r"^(\w+)\s+(\S+)\s*-\s*(\S+)$", line)
        if not match:
            raise ValidationError(_("Line %(n)d: write it like “mon 09:00-17:00”.") % {"n": number})
        day, opens, closes = match.groups()
        rows.append({"day": day, "opens": opens, "closes": closes})
    return clean_weekly_hours(rows)
