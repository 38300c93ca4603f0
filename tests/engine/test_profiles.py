"""Profiles on their own: evaluation at a datetime, time zones and DST, step boundaries,
arithmetic, and the errors bad profiles get."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from doge_datagen.errors import ConfigurationError
from doge_datagen.profiles import (
    Profile,
    Profiled,
    first_excess,
    hourly,
    piecewise,
    profile,
    weekly,
)

UTC = timezone.utc
HOURS = [float(h) for h in range(24)]


def ms(*args, tz=UTC):
    return datetime(*args, tzinfo=tz).timestamp() * 1000


def test_hourly_reads_the_hour_of_day_naive_datetimes_being_utc():
    p = hourly(HOURS)
    assert p(datetime(2024, 5, 6, 13, 59)) == 13.0
    assert p(datetime(2024, 5, 6, 13, 59, tzinfo=ZoneInfo("Europe/Paris"))) == 11.0
    assert p(ms(2024, 5, 6, 0, 0)) == 0.0
    assert p.max == 23.0 and p.step


def test_hourly_in_a_zone_follows_daylight_saving_time():
    p = hourly(HOURS, tz="Europe/Paris")
    # Winter: UTC+1; summer: UTC+2; 2024-03-31 01:00 UTC skips from 02:00 to 03:00 local.
    assert p(datetime(2024, 1, 15, 12, 0)) == 13.0
    assert p(datetime(2024, 7, 15, 12, 0)) == 14.0
    assert p(datetime(2024, 3, 31, 0, 59)) == 1.0
    assert p(datetime(2024, 3, 31, 1, 0)) == 3.0
    # The boundaries follow local hours, and the offset change itself is one.
    assert p.next_change_ms(ms(2024, 3, 31, 0, 30)) == ms(2024, 3, 31, 1, 0)
    assert p.next_change_ms(ms(2024, 3, 31, 1, 0)) == ms(2024, 3, 31, 2, 0)
    # Autumn: 03:00 CEST falls back to 02:00 CET at 01:00 UTC; hour 2 lasts two hours.
    assert p(datetime(2024, 10, 27, 0, 30)) == 2.0
    assert p(datetime(2024, 10, 27, 1, 30)) == 2.0
    assert p(datetime(2024, 10, 27, 2, 30)) == 3.0


def test_half_hour_zones_have_boundaries_at_their_local_hours():
    p = hourly(HOURS, tz="Asia/Kolkata")  # UTC+5:30
    assert p.next_change_ms(ms(2024, 1, 1, 0, 0)) == ms(2024, 1, 1, 0, 30)
    assert p(datetime(2024, 1, 1, 0, 29)) == 5.0
    assert p(datetime(2024, 1, 1, 0, 30)) == 6.0


def test_step_boundaries_are_where_the_value_changes():
    """Walking the boundaries of a DST-crossing year, the value is constant between two of
    them (checked every 10 minutes) and every local hour starts at one."""
    p = hourly(HOURS, tz="America/New_York") * weekly([1, 2, 3, 4, 5, 6, 7], tz="America/New_York")
    at = ms(2024, 3, 9, 0, 0)
    end = ms(2024, 3, 12, 0, 0)
    bounds = []
    while at < end:
        nxt = p.next_change_ms(at)
        assert nxt is not None and nxt > at
        value = p.value_ms(at)
        probe = at
        while probe < nxt:
            assert p.value_ms(probe) == value, datetime.fromtimestamp(probe / 1000, UTC)
            probe += 600_000
        bounds.append(nxt)
        at = nxt
    # 72 hours, one of which does not exist locally (2024-03-10 02:00 EST -> 03:00 EDT).
    assert len(bounds) == 72


def test_weekly_by_day_and_by_hour_of_week():
    days = weekly([1, 2, 3, 4, 5, 6, 7])
    assert days(datetime(2024, 5, 6, 23, 0)) == 1.0  # a Monday
    assert days(datetime(2024, 5, 12, 0, 0)) == 7.0  # a Sunday
    hours = weekly(list(range(168)))
    assert hours(datetime(2024, 5, 7, 5, 0)) == 24 + 5
    assert hours(datetime(2024, 5, 12, 23, 0)) == 167


def test_piecewise_is_one_before_its_first_start_and_reads_naive_starts_in_its_zone():
    campaign = piecewise(
        [(datetime(2024, 5, 6, 9, 0), 3.0), (datetime(2024, 5, 6, 18, 0), 0.0)],
        tz="Europe/Paris",
    )
    assert campaign(datetime(2024, 5, 6, 6, 59)) == 1.0
    assert campaign(datetime(2024, 5, 6, 7, 0)) == 3.0  # 09:00 in Paris
    assert campaign(datetime(2024, 5, 6, 16, 0)) == 0.0
    assert campaign.next_change_ms(ms(2024, 5, 6, 8, 0)) == ms(2024, 5, 6, 16, 0)
    assert campaign.next_change_ms(ms(2024, 5, 6, 17, 0)) is None
    assert campaign.max == 3.0


def test_callables_get_the_aware_datetime_and_declare_their_maximum():
    seen = []

    def lunch(when):
        seen.append(when)
        return 2.0 if when.hour == 12 else 0.5

    p = profile(lunch, max=2.0, tz="Europe/Paris")
    assert p(datetime(2024, 1, 15, 11, 0)) == 2.0
    assert seen[-1].tzinfo is not None and seen[-1].hour == 12
    assert not p.step and p.max == 2.0 and p.name == "lunch"


def test_a_callable_above_its_declared_maximum_is_an_error_not_clipped():
    p = profile(lambda when: 1.0 + when.hour / 10, max=2.0, name="ramp")
    assert p(datetime(2024, 1, 1, 10)) == 2.0
    with pytest.raises(
        ConfigurationError, match=r"'ramp' returned 2.1 at 2024-01-01T11:00.*max 2.0"
    ):
        p(datetime(2024, 1, 1, 11))
    with pytest.raises(ConfigurationError, match="finite number >= 0"):
        profile(lambda when: -1, max=1)(datetime(2024, 1, 1))


def test_arithmetic_base_times_profile_either_way_and_products():
    day = hourly(HOURS, name="day")
    week = weekly([1, 1, 1, 1, 1, 0.5, 0.5], name="week")
    for value in (0.5 * day, day * 0.5):
        assert isinstance(value, Profiled)
        assert value.base == 0.5 and value.profile is day
        assert value(datetime(2024, 5, 6, 10)) == 5.0
        assert value.label() == "0.5% x day"
    both = 2 * day * week
    assert isinstance(both, Profiled) and both.label() == "2% x day x week"
    assert both(datetime(2024, 5, 11, 10)) == 2 * 10 * 0.5
    assert isinstance(day * week, Profile) and (day * week).max == 23.0
    assert (0.5 * day * 4).base == 2.0


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: hourly([1.0] * 23), r"hourly\(\) takes 24 factors, got 23"),
        (lambda: weekly([1.0] * 8), r"weekly\(\) takes 7 or 168 factors, got 8"),
        (
            lambda: hourly([1.0] * 23 + [-0.5]),
            r"hourly\(\) factor #23 must be a finite number >= 0",
        ),
        (lambda: hourly([1.0] * 23 + [float("nan")]), r"factor #23 must be a finite number"),
        (
            lambda: hourly([1.0] * 24, tz="Mars/Olympus_Mons"),
            r"unknown time zone 'Mars/Olympus_Mons'",
        ),
        (lambda: weekly([1.0] * 7, tz="../etc/passwd"), "unknown time zone"),
        (lambda: piecewise([(datetime(2024, 1, 2), 1), (datetime(2024, 1, 1), 2)]), "piece #1"),
        (
            lambda: piecewise([(datetime(2024, 1, 2), -1)]),
            r"factor #0 must be a finite number >= 0",
        ),
        (lambda: piecewise([datetime(2024, 1, 2)]), r"piece #0 must be a \(start, factor\) pair"),
        (lambda: profile(lambda w: 1, max=-1), r"max must be a finite number >= 0"),
        (lambda: profile("not callable", max=1), "takes a callable"),
        (lambda: -1 * hourly([1.0] * 24), "base of a profiled value"),
    ],
)
def test_bad_profiles_get_clear_errors(make, message):
    with pytest.raises(ConfigurationError, match=message):
        make()


def test_first_excess_names_the_first_hour_above_100():
    peak = hourly([1.0] * 13 + [3.0] + [1.0] * 10)
    assert first_excess([10.0, 30 * peak]) is None  # 100 at 13:00, not above
    total, where = first_excess([20.0, 30 * peak])
    assert total == pytest.approx(110.0) and where == "13:00 (UTC)"
    weekend = weekly([1, 1, 1, 1, 1, 4, 4], tz="Europe/Paris")
    total, where = first_excess([30 * weekend])
    assert where == "Saturday 00:00 (Europe/Paris)" and total == pytest.approx(120.0)
    # In two zones the hours of a year are walked; the instant is named.
    total, where = first_excess([60 * hourly([1.0] * 12 + [1.5] + [1.0] * 11), 30 * weekend])
    assert where.startswith("2024-01-01T12:00") and total == pytest.approx(120.0)


def test_first_excess_leaves_piecewise_and_callables_to_the_run():
    campaign = piecewise([(datetime(2024, 1, 1), 5.0)])
    assert first_excess([30 * campaign]) is None  # 150 %, but only from a date on
    assert first_excess([80 * profile(lambda w: 1, max=2)]) is None


def test_day_boundaries_in_utc_are_hours():
    p = hourly(HOURS)
    start = ms(2024, 5, 6, 10, 15)
    assert p.next_change_ms(start) == ms(2024, 5, 6, 11, 0)
    assert p.next_change_ms(ms(2024, 5, 6, 11, 0)) == ms(2024, 5, 6, 12, 0)
    assert datetime(2024, 5, 6, tzinfo=UTC) + timedelta(hours=1)
