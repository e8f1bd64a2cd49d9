"""The outputs a dynamic provider returned, for a test that goes on to use them (Pulumi types them optional)."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CreateResult, ReadResult, UpdateResult


def outs_of(result: CreateResult | ReadResult | UpdateResult) -> dict[str, Any]:
    assert result.outs is not None, "the provider returned no outputs"
    return result.outs
