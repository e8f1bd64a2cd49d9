"""What the provider tests ask of every resource's ``check``: the property errors it returns, without a host call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi.dynamic import ResourceProvider

from providers.transport import FakeTransport, Transport


def check_failures(provider: Callable[[Transport], ResourceProvider], props: dict[str, Any]) -> list[tuple[str, str]]:
    """(property, reason) of each failure ``check`` finds in ``props``; check must not touch the host."""
    t = FakeTransport({})
    result = provider(t).check({}, props)
    assert t.calls == [], "check must not touch the host"
    return [(f.property, f.reason) for f in result.failures]


def assert_check_finds(found: list[tuple[str, str]], prop: str | None, words: str | None) -> None:
    """No failure when ``prop`` is None; otherwise one on ``prop`` whose reason says ``words``."""
    if prop is None:
        assert found == []
    else:
        assert words is not None and any(p == prop and words in r for p, r in found), found


def assert_only_failure(found: list[tuple[str, str]], prop: str, words: str, secrets: tuple[str, ...] = ()) -> None:
    """Exactly one failure, on ``prop``, whose reason says ``words`` and repeats none of ``secrets``."""
    assert [p for p, _ in found] == [prop], found
    assert words in found[0][1]
    assert not [s for s in secrets if s in found[0][1]]
