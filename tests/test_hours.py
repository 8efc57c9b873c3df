"""Tests for faxd.hours: parsing office-hours specs and testing moments against them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from faxd.hours import Hours

# 2024-01-01 was a Monday, so at(weekday, ...) is a moment in that week.


def at(weekday: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2024, 1, 1 + weekday, hour, minute, second)


MON, TUE, WED, THU, FRI, SAT, SUN = range(7)


def test_weekday_office_hours() -> None:
    """Mon-Fri 08:00-18:00 includes 08:00 and excludes 18:00 and weekends."""
    hours = Hours.parse("Mon-Fri 08:00-18:00")
    assert hours.contains(at(MON, 8))
    assert hours.contains(at(FRI, 17, 59, 59))
    assert not hours.contains(at(FRI, 18))
    assert not hours.contains(at(TUE, 7, 59, 59))
    assert not hours.contains(at(SAT, 12))


def test_list_of_items() -> None:
    """Comma-separated items each add their windows."""
    hours = Hours.parse("Mon-Fri 08:00-18:00, Sat 09:00-13:00")
    assert hours.contains(at(SAT, 9))
    assert not hours.contains(at(SAT, 13))
    assert not hours.contains(at(SUN, 10))
    assert str(hours) == "Mon-Fri 08:00-18:00, Sat 09:00-13:00"


def test_single_day_alone_is_the_whole_day() -> None:
    """ "Sat" alone covers all of Saturday and nothing of Sunday."""
    hours = Hours.parse("Sat")
    assert hours.contains(at(SAT, 0))
    assert hours.contains(at(SAT, 23, 59, 59))
    assert not hours.contains(at(SUN, 0))
    assert not hours.contains(at(FRI, 23, 59, 59))


def test_clock_range_alone_is_every_day() -> None:
    """A clock range without days applies to each day of the week."""
    hours = Hours.parse("12:00-13:00")
    assert all(hours.contains(at(day, 12, 30)) for day in range(7))
    assert not hours.contains(at(WED, 13))


def test_day_range_wraps_over_the_weekend() -> None:
    """Sun-Tue is Sunday, Monday and Tuesday; Fri-Mon wraps the same way."""
    hours = Hours.parse("Sun-Tue")
    assert [hours.contains(at(day, 10)) for day in range(7)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
    ]
    assert Hours.parse("Fri-Mon 10:00-11:00").contains(at(MON, 10, 30))


def test_overnight_range_belongs_to_the_day_it_starts() -> None:
    """Fri 22:00-06:00 covers Friday night and early Saturday, not early Friday."""
    hours = Hours.parse("Fri 22:00-06:00")
    assert hours.contains(at(FRI, 22))
    assert hours.contains(at(SAT, 5, 59))
    assert not hours.contains(at(SAT, 6))
    assert not hours.contains(at(FRI, 5))
    assert not hours.contains(at(SAT, 22, 30))


def test_overnight_range_on_sunday_wraps_to_monday() -> None:
    """Sun 23:00-01:00 reaches into Monday morning."""
    hours = Hours.parse("Sun 23:00-01:00")
    assert hours.contains(at(MON, 0, 30))
    assert not hours.contains(at(MON, 1))


def test_end_at_24_00_and_at_00_00() -> None:
    """24:00 (or 00:00) as the end runs to midnight and no further."""
    for spec in ("Mon 18:00-24:00", "Mon 18:00-00:00"):
        hours = Hours.parse(spec)
        assert hours.contains(at(MON, 23, 59, 59))
        assert not hours.contains(at(TUE, 0))


def test_full_names_case_and_en_dash() -> None:
    """Full day names, any case, and an en dash are accepted."""
    hours = Hours.parse("monday\u2013WEDNESDAY 9:00-17:00")
    assert hours.contains(at(WED, 9))
    assert not hours.contains(at(THU, 9))


def test_aware_datetimes_use_the_local_wall_clock() -> None:
    """An aware datetime is judged by its local time, a naive one as given."""
    naive = datetime(2024, 1, 3, 12, 0)  # Wednesday noon, local
    local_zone = naive.astimezone().tzinfo
    assert local_zone is not None
    aware = naive.replace(tzinfo=local_zone).astimezone(UTC)
    hours = Hours.parse("Wed 11:30-12:30")
    assert hours.contains(naive)
    assert hours.contains(aware)
    offset = aware.astimezone().utcoffset() or timedelta(0)
    elsewhere = aware.astimezone(timezone(offset + timedelta(hours=5)))
    assert hours.contains(elsewhere)  # same instant, another zone: still local noon


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("", "non-empty"),
        ("Mon-Fry 08:00-18:00", "'Fry' is not a day"),
        ("Mon 8-18", "'8' is not a time; write HH:MM"),
        ("Mon 08:00", "not a clock range like 08:00-18:00"),
        ("Mon 08:00-25:00", "'25:00' is not a time of day"),
        ("Mon 08:60-09:00", "'08:60' is not a time of day"),
        ("Mon 24:00-06:00", "cannot start at 24:00"),
        ("Mon 08:00-08:00", "is empty"),
        ("Mon-Wed-Fri", "not a day or a day range"),
        ("Mon 08:00-12:00 extra", "has 3 parts"),
        ("Mon 08:00-12:00,", "empty item"),
        ("Mon 8am-5pm", "is not a time"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, fragment: str) -> None:
    """Each malformed spec raises ValueError naming the bad part."""
    with pytest.raises(ValueError) as caught:
        Hours.parse(spec)
    assert fragment in str(caught.value)
