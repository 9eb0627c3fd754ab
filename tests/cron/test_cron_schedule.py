"""Fire times and misfire decisions, computed with an injected "now" (no APScheduler)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hotplex_cron.misfire import plan
from hotplex_cron.schedule import parse_schedule
from hypothesis import given, settings
from hypothesis import strategies as st

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(text: str, zone: str, start: datetime, count: int) -> list[datetime]:
    schedule = parse_schedule(text, zone)
    out: list[datetime] = []
    moment = start
    for _ in range(count):
        nxt = schedule.next_after(moment, start)
        assert nxt is not None
        out.append(nxt)
        moment = nxt
    return out


def local(moments: list[datetime], tz: ZoneInfo) -> list[str]:
    return [m.astimezone(tz).strftime("%m-%d %H:%M%z") for m in moments]


def test_a_daily_time_in_the_spring_forward_gap_runs_an_hour_later_that_day() -> None:
    # Berlin skips 02:00-03:00 on 2026-03-29: 02:30 does not exist that day
    got = fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), 3)
    assert local(got, BERLIN) == ["03-29 03:30+0200", "03-30 02:30+0200", "03-31 02:30+0200"]
    got = fires("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), 2)
    assert local(got, NEW_YORK) == ["03-08 03:30-0400", "03-09 02:30-0400"]


def test_a_daily_time_in_the_fall_back_overlap_runs_once() -> None:
    # Berlin repeats 02:00-03:00 on 2026-10-25; New York repeats 01:00-02:00 on 2026-11-01
    got = fires("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), 3)
    assert local(got, BERLIN) == ["10-25 02:30+0200", "10-26 02:30+0100", "10-27 02:30+0100"]
    got = fires("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), 2)
    assert local(got, NEW_YORK) == ["11-01 01:30-0400", "11-02 01:30-0500"]


def test_a_wildcard_hour_runs_at_every_real_occurrence_through_both_changes() -> None:
    got = fires("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 40), 6)
    assert local(got, BERLIN) == [
        "10-25 02:00+0200",
        "10-25 02:30+0200",
        "10-25 02:00+0100",  # the repeated hour fires again, in real time order
        "10-25 02:30+0100",
        "10-25 03:00+0100",
        "10-25 03:30+0100",
    ]
    got = fires("*/30 * * * *", "America/New_York", utc(2026, 3, 8, 6, 10), 3)
    # 01:30 EST, then 02:00 and 02:30 do not exist: 03:00 EDT is the next real time
    assert local(got, NEW_YORK) == ["03-08 01:30-0500", "03-08 03:00-0400", "03-08 03:30-0400"]


@settings(max_examples=60, deadline=None)
@given(
    minute=st.sampled_from(["*/7", "0", "30", "15,45", "*"]),
    hour=st.sampled_from(["*", "1-3", "2", "*/2", "0,12"]),
    start=st.datetimes(
        min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
    ),
    zone=st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"]),
)
def test_fire_times_always_move_forward_and_match_the_expression(
    minute: str, hour: str, start: datetime, zone: str
) -> None:
    schedule = parse_schedule(f"{minute} {hour} * * *", zone)
    moment = start
    for _ in range(5):
        nxt = schedule.next_after(moment, start)
        assert nxt is not None and nxt > moment
        assert nxt - moment <= timedelta(days=1, hours=2)
        wall = nxt.astimezone(ZoneInfo(zone))
        assert schedule.cron is not None
        assert wall.minute in schedule.cron.minutes
        moment = nxt


def test_an_interval_counts_from_its_anchor_and_once_fires_once() -> None:
    every = parse_schedule("every 1h30m", "Europe/Berlin")
    anchor = utc(2026, 3, 29, 0, 0)  # across the change: real time, 90 minutes apart
    assert every.next_after(anchor, anchor) == utc(2026, 3, 29, 1, 30)
    assert every.next_after(utc(2026, 3, 29, 1, 30), anchor) == utc(2026, 3, 29, 3, 0)
    assert every.next_after(utc(2026, 3, 28), anchor) == utc(2026, 3, 29, 1, 30)
    once = parse_schedule("at 2026-12-24 09:00", "Europe/Berlin")
    assert once.next_after(utc(2026, 12, 1), anchor) == utc(2026, 12, 24, 8, 0)
    assert once.next_after(utc(2026, 12, 24, 8, 0), anchor) is None
    assert parse_schedule("at 2026-12-24T09:00+05:00", "UTC").at == utc(2026, 12, 24, 4, 0)


@pytest.mark.parametrize(
    ("text", "zone", "message"),
    [
        ("* * * *", "UTC", "expected 5 fields"),
        ("0 0 * * * *", "UTC", "expected 5 fields"),
        ("61 * * * *", "UTC", "minute: 61 is outside 0-59"),
        ("*/0 * * * *", "UTC", "step '0' must be 1 or more"),
        ("0 5-2 * * *", "UTC", "runs backwards"),
        ("0 9 * * mon-fri", "Mars/Olympus", "unknown time zone"),
        ("every 0s", "UTC", "longer than 0"),
        ("every soon", "UTC", "use e.g. 30s"),
        ("at tomorrow", "UTC", "ISO 8601"),
    ],
)
def test_bad_schedules_say_what_is_wrong(text: str, zone: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_schedule(text, zone)


def test_names_ranges_lists_and_the_day_rule() -> None:
    weekdays = parse_schedule("0 9 * * mon-fri", "UTC")
    saturday = utc(2026, 12, 5, 12)  # a Saturday
    assert weekdays.next_after(saturday, saturday) == utc(2026, 12, 7, 9)
    # both day fields restricted: either matches (the 1st, or a Sunday)
    either = parse_schedule("0 0 1 * sun", "UTC")
    assert either.next_after(utc(2026, 12, 1, 1), saturday) == utc(2026, 12, 6)
    assert parse_schedule("0 0 * jan 7", "UTC").next_after(saturday, saturday) == utc(2027, 1, 3)


HOURLY = parse_schedule("every 1h", "UTC")
ANCHOR = utc(2026, 6, 1, 0, 0)


@pytest.mark.parametrize(
    ("misfire", "runs"),
    [("skip", []), ("once", [3]), ("all", [1, 2, 3])],
)
def test_three_missed_times_follow_the_misfire_choice(misfire: str, runs: list[int]) -> None:
    # the job last ran at 00:00; the daemon comes back at 03:30: 01:00, 02:00, 03:00 missed
    decided = plan(
        HOURLY,
        since=ANCHOR,
        now=utc(2026, 6, 1, 3, 30),
        anchor=ANCHOR,
        misfire=misfire,  # type: ignore[arg-type]
        grace=timedelta(seconds=60),
        limit=10,
    )
    assert [d.at.hour for d in decided.due] == [1, 2, 3]
    assert all(d.missed for d in decided.due)
    assert [d.at.hour for d in decided.due if d.run] == runs
    assert not decided.left_out


def test_a_time_within_the_grace_is_on_time_and_once_does_not_add_a_catch_up() -> None:
    decided = plan(
        HOURLY,
        since=ANCHOR,
        now=utc(2026, 6, 1, 3, 0, 30),
        anchor=ANCHOR,
        misfire="once",
        grace=timedelta(seconds=60),
        limit=10,
    )
    assert [(d.at.hour, d.run, d.missed) for d in decided.due] == [
        (1, False, True),
        (2, False, True),
        (3, True, False),
    ]


def test_all_is_bounded_to_the_most_recent_missed_times() -> None:
    decided = plan(
        HOURLY,
        since=ANCHOR,
        now=utc(2026, 6, 3, 0, 30),  # 48 missed
        anchor=ANCHOR,
        misfire="all",
        grace=timedelta(seconds=60),
        limit=5,
    )
    assert [d.at for d in decided.due] == [utc(2026, 6, 2, h) for h in range(20, 24)] + [
        utc(2026, 6, 3, 0)
    ]
    assert decided.left_out
    assert all(d.run for d in decided.due)
