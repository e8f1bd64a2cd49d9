"""How a host's password travels as a resource input (providers/remote.password_secret): the password stays the
password, marked secret, and every other connection setting stays a plain value a plan can name."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import pulumi
import pytest

from providers import remote

pytestmark = pytest.mark.unit

CONN = {"fqdn": "wapcomputer1.contoso.com", "address": "127.0.10.11", "auth": "ntlm", "username": "CONTOSO\\u",
        "password": "Not-Real-Pw-1"}
T = TypeVar("T")


async def resolved(output: pulumi.Output[Any]) -> tuple[Any, bool]:
    """An Output's value and whether it is a secret, as the engine receives them."""
    return await output.future(), await output.is_secret()


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """The coroutine on a loop of its own. Not asyncio.run: it leaves the thread with no event loop, and a later
    test that builds an Output outside a loop (as a program does) would fail."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_the_password_stays_the_password_marked_secret() -> None:
    async def password() -> tuple[dict[str, Any], tuple[Any, bool]]:
        out = remote.password_secret(dict(CONN))
        assert isinstance(out["password"], pulumi.Output)
        return out, await resolved(out["password"])

    out, secret = run(password())
    assert secret == ("Not-Real-Pw-1", True)
    assert {k: v for k, v in out.items() if k != "password"} == {k: v for k, v in CONN.items() if k != "password"}


def test_settings_not_known_yet_stay_the_same_settings_secret_as_a_whole() -> None:
    async def settings() -> tuple[Any, bool]:
        return await resolved(remote.password_secret(pulumi.Output.from_input(dict(CONN))))

    assert run(settings()) == (CONN, True)
