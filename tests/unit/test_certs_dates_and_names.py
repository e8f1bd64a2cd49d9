"""How providers/certs reads the dates and names a host or a file gives: a date keeps its instant whatever zone
it was written in, and the rules judge it against the caller's clock."""

from __future__ import annotations

import datetime as dt

import pytest

from providers import certs

pytestmark = pytest.mark.unit

PLUS_TWO = dt.timezone(dt.timedelta(hours=2))


def test_a_date_written_in_a_hosts_own_zone_keeps_its_instant() -> None:
    local = dt.datetime(2027, 1, 1, 2, 0, tzinfo=PLUS_TWO)
    assert certs.when(local) == dt.datetime(2027, 1, 1, 0, 0, tzinfo=dt.UTC)
    assert certs.when(local).utcoffset() == dt.timedelta(hours=2)  # type: ignore[union-attr]


def test_a_date_without_a_zone_is_utc() -> None:
    assert certs.when(dt.datetime(2027, 1, 1)) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
