"""When a job is due: its schedule parsed, and its next fire time after any instant.

Three kinds, written as one text:

- a five-field cron expression in the job's time zone: ``30 9 * * 1-5``;
- a fixed interval from the job's anchor (when it was added or its schedule changed):
  ``every 90s``, ``every 1h30m`` (real time, so daylight saving changes nothing);
- one time: ``at 2026-12-24 09:00`` (in the job's zone, or with an explicit offset).

Fire times are computed here, never by APScheduler (whose timers ignore an injected clock),
from an injected ``after`` instant, so tests freeze "now". Daylight saving (see
docs/cron.md): a local time that does not exist (the hour the clocks skip) fires at the
instant it would have had without the jump, one hour later on the wall clock; a local
time that happens twice (the hour repeated when the clocks go back) fires once, at its
first occurrence, unless the hour field is a wildcard (``*``, ``*/2``), which fires in
both (every real occurrence of a matching minute).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["CronExpr", "Schedule", "parse_schedule", "zone"]

Kind = Literal["cron", "interval", "once"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_NAMES = {3: {m: i for i, m in enumerate(_MONTHS, 1)}, 4: {d: i for i, d in enumerate(_DAYS)}}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELD_NAMES = ("minute", "hour", "day of month", "month", "day of week")
_DURATION = re.compile(r"(\d+)(s|m|h|d)")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: How far a wall time and its instant can be apart around a daylight-saving change.
_SLACK = timedelta(hours=3)
#: How far back missed fire times are looked for.
_LOOK_BACK = timedelta(days=31)
#: How far ahead a cron expression is searched (Feb 29 on a Monday is rarer than this).
_SEARCH_DAYS = 366 * 30


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError saying why not."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin"
        ) from None


def _value(text: str, index: int) -> int:
    names = _NAMES.get(index, {})
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not text.isdigit():
        raise ValueError(f"{_FIELD_NAMES[index]}: {text!r} is not a number")
    low, high = _BOUNDS[index]
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{_FIELD_NAMES[index]}: {number} is outside {low}-{high}")
    return number


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _BOUNDS[index]
    values: set[int] = set()
    for part in text.split(","):
        base, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValueError(f"{_FIELD_NAMES[index]}: step {step_text!r} must be 1 or more")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _value(first, index), _value(last, index)
            if start > end:
                raise ValueError(f"{_FIELD_NAMES[index]}: range {base!r} runs backwards")
        else:
            start = _value(base, index)
            end = high if slash else start
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronExpr:
    """A parsed five-field cron expression (minute hour day-of-month month day-of-week)."""

    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'
    any_hour: bool  # the hour field is a wildcard: repeated local times fire twice

    @classmethod
    def parse(cls, text: str) -> CronExpr:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(
                f"cron expression {text!r}: expected 5 fields (minute hour day month weekday),"
                f" got {len(fields)}"
            )
        parsed = [_field(f, i) for i, f in enumerate(fields)]
        return cls(
            minutes=tuple(sorted(parsed[0])),
            hours=tuple(sorted(parsed[1])),
            days=parsed[2],
            months=parsed[3],
            weekdays=parsed[4],
            any_day=fields[2].startswith("*"),
            any_weekday=fields[4].startswith("*"),
            any_hour=fields[1].startswith("*"),
        )

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:  # classic cron: both must match...
            return in_month and in_week
        return in_month or in_week  # ...unless both are restricted: either one

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first instant (UTC) later than ``after`` at which a matching local time
        occurs (see the module docstring for the daylight-saving rules)."""
        after = after.astimezone(UTC)
        # near a daylight-saving change a wall time and its instant are out of order:
        # look from a bit earlier, and a bit past the first instant found
        near = _changes(tz, after)
        low = after.astimezone(tz).replace(tzinfo=None) - (_SLACK if near else timedelta(0))
        best: datetime | None = None
        for wall in self._walls_from(low):
            if best is not None and wall > best.astimezone(tz).replace(tzinfo=None) + _SLACK:
                break
            for instant in self._instants(wall, tz):
                if instant > after and (best is None or instant < best):
                    best = instant
            if best is not None and not near and not _changes(tz, best):
                break
        return best

    def _walls_from(self, low: datetime) -> Iterator[datetime]:
        """Matching local wall times from ``low`` on, in order (for ``_SEARCH_DAYS``)."""
        day = low.date()
        for offset in range(_SEARCH_DAYS):
            if self.day_matches(day):
                first_day = offset == 0
                start_hour = bisect_left(self.hours, low.hour) if first_day else 0
                for hour in self.hours[start_hour:]:
                    same_hour = first_day and hour == low.hour
                    start_minute = bisect_left(self.minutes, low.minute) if same_hour else 0
                    for minute in self.minutes[start_minute:]:
                        yield datetime.combine(day, time(hour, minute))
            day += timedelta(days=1)

    def _instants(self, wall: datetime, tz: ZoneInfo) -> list[datetime]:
        first = wall.replace(tzinfo=tz, fold=0)
        second = wall.replace(tzinfo=tz, fold=1)
        instants = [first.astimezone(UTC)]
        repeated = first.utcoffset() != second.utcoffset() and _exists(wall, tz)
        if repeated and self.any_hour:
            instants.append(second.astimezone(UTC))
        return instants


def _changes(tz: ZoneInfo, moment: datetime) -> bool:
    """Whether the zone's offset changes within ``_SLACK`` of ``moment``."""
    return (moment - _SLACK).astimezone(tz).utcoffset() != (moment + _SLACK).astimezone(
        tz
    ).utcoffset()


def _exists(wall: datetime, tz: ZoneInfo) -> bool:
    """Whether the local time happens (it is not in the hour the clocks skip)."""
    back = wall.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back == wall


def parse_interval(text: str) -> float:
    compact = text.replace(" ", "")
    if not compact or _DURATION.sub("", compact):
        raise ValueError(f"interval {text!r}: use e.g. 30s, 15m, 2h or 1h30m")
    seconds = sum(int(n) * _UNIT[u] for n, u in _DURATION.findall(compact))
    if seconds <= 0:
        raise ValueError(f"interval {text!r} must be longer than 0 s")
    return float(seconds)


def parse_at(text: str, tz: ZoneInfo) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise ValueError(f"time {text!r}: use e.g. 2026-12-24 09:00 (ISO 8601)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Schedule:
    """A job's schedule; ``text`` is what the user wrote."""

    text: str
    kind: Kind
    tz: ZoneInfo
    cron: CronExpr | None = None
    interval: float | None = None
    at: datetime | None = None

    def next_after(self, after: datetime, anchor: datetime) -> datetime | None:
        """The first fire time later than ``after`` (UTC), or None (a one-time job whose
        time has passed). ``anchor`` is where an interval counts from."""
        after = after.astimezone(UTC)
        if self.cron is not None:
            return self.cron.next_after(after, self.tz)
        if self.interval is not None:
            anchor = anchor.astimezone(UTC)
            if after < anchor:
                return anchor + timedelta(seconds=self.interval)
            steps = int((after - anchor).total_seconds() // self.interval) + 1
            return anchor + timedelta(seconds=steps * self.interval)
        assert self.at is not None
        return self.at if self.at > after else None

    def due_between(
        self, since: datetime, until: datetime, anchor: datetime, *, limit: int
    ) -> tuple[list[datetime], bool]:
        """The fire times in (since, until], oldest first, at most ``limit`` of the most
        recent ones; True when older ones were left out."""
        times: list[datetime] = []
        more = False
        if until - since > _LOOK_BACK:  # older misses are left out whatever the choice
            first = self.next_after(since, anchor)
            since = until - _LOOK_BACK
            more = first is not None and first <= since
        moment = self.next_after(since, anchor)
        while moment is not None and moment <= until:
            times.append(moment)
            if len(times) > limit:
                times.pop(0)
                more = True
                if self.interval is not None:  # jump: only the last ``limit`` matter
                    span = (until - moment).total_seconds()
                    skip = int(span // self.interval) - limit
                    if skip > 0:
                        moment += timedelta(seconds=skip * self.interval)
            moment = self.next_after(moment, anchor)
        return times, more


def parse_schedule(text: str, timezone: str = "UTC") -> Schedule:
    """Parse ``text`` (cron, ``every <interval>`` or ``at <time>``) in ``timezone``;
    ValueError saying what is wrong."""
    tz = zone(timezone)
    stripped = text.strip()
    word, _, rest = stripped.partition(" ")
    if word.lower() == "every":
        return Schedule(stripped, "interval", tz, interval=parse_interval(rest))
    if word.lower() == "at":
        return Schedule(stripped, "once", tz, at=parse_at(rest, tz))
    return Schedule(stripped, "cron", tz, cron=CronExpr.parse(stripped))
