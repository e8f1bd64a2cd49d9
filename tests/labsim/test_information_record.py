"""labsim's InformationRecord (labsim/records.py) as Windows fills one (information_record.xml): the moment in UTC
written with .NET's seven fractional digits and +00:00, the writer, user and host, the host process and thread
ids. Pure functions, no sockets."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from typing import Any

import pytest
from psrpcore.types import serialize_clixml

from labsim import records as R

pytestmark = pytest.mark.unit

CEST = dt.timezone(dt.timedelta(hours=2))


def record_members(now: dt.datetime | None = None, computer: str = "WAP01") -> dict[str, Any]:
    record = R.information_record("information text", source="Write-Streams", user="CONTOSO\\WapAdmin",
                                  computer=computer, now=now)
    assert record.PSObject.type_names == []  # an Obj with no type names, as Windows sends it
    return {p.name: p.get_value(record) for p in record.PSObject.extended_properties}


def time_generated(now: dt.datetime) -> str:
    record = R.information_record("x", source="s", user="u", computer="c", now=now)
    no_cipher: Any = None  # the record holds no SecureString to encrypt
    found = re.search(r'<DT N="TimeGenerated">([^<]*)</DT>', serialize_clixml(record, no_cipher))
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("now, written", [
    (dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=CEST), "2026-01-02T01:04:05.123456"),
    (dt.datetime(2026, 1, 2, 3, 4, 5, 123450, tzinfo=dt.UTC), "2026-01-02T03:04:05.123450"),
    (dt.datetime(2026, 1, 2, 3, 4, 5, 0, tzinfo=dt.UTC), "2026-01-02T03:04:05.000000"),
])
def test_the_moment_is_written_in_utc_with_seven_digits_and_an_offset(now: dt.datetime, written: str) -> None:
    # As recorded: 2018-06-13T23:45:29.4583203+00:00 (not Z, and .NET's 100 ns ticks: seven digits).
    text = time_generated(now)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00", text), text
    assert text.startswith(written)
    generated = record_members(now)["TimeGenerated"]
    assert generated == now and generated.utcoffset() == dt.timedelta(0)
    assert (generated.tzinfo.dst(generated), generated.tzinfo.tzname(generated)) == (dt.timedelta(0), "UTC")


def test_every_moment_is_written_with_seven_digits() -> None:
    # Whatever the microseconds, the seventh digit (a tick labsim cannot know) never carries into an eighth.
    base = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    for us in range(0, 1_000_000, 997):
        text = time_generated(base.replace(microsecond=us))
        assert re.fullmatch(rf"2026-01-02T03:04:05\.{us:06d}\d\+00:00", text), text


def test_the_moment_is_utc_whatever_the_time_zone_labsim_runs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=CEST)
    monkeypatch.setenv("TZ", "JST-9")  # a POSIX zone: no tz database needed
    time.tzset()
    try:
        text = time_generated(now)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert text.startswith("2026-01-02T01:04:05.123456"), text


def test_without_a_moment_given_the_record_is_of_now() -> None:
    before = dt.datetime.now(dt.UTC)
    generated = record_members()["TimeGenerated"]
    assert before <= generated <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)


def test_the_writer_user_host_and_ids() -> None:
    m = record_members(dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert list(m) == ["MessageData", "Source", "TimeGenerated", "Tags", "User", "Computer", "ProcessId",
                       "NativeThreadId", "ManagedThreadId"]
    assert (m["MessageData"], m["Source"], m["User"], m["Computer"]) == (
        "information text", "Write-Streams", "CONTOSO\\WapAdmin", "WAP01")
    assert list(m["Tags"]) == [] and m["Tags"].PSObject.type_names[0].startswith(
        "System.Collections.Generic.List`1[[System.String, mscorlib")
    assert m["ProcessId"] == R.host_process_id("WAP01") and m["ManagedThreadId"] == 10
    # One server thread keeps one native thread id, another thread has its own (a real host's worker threads).
    assert record_members(computer="WAP02")["NativeThreadId"] == m["NativeThreadId"]
    other: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: other.update(record_members()))
    worker.start()
    worker.join()
    assert 2000 <= other["NativeThreadId"] < 8000 and 2000 <= m["NativeThreadId"] < 8000
