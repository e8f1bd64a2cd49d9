"""The psrpcore internals labsim relies on (labsim/psrp_compat.py): an upgrade that changes them fails here first."""

from __future__ import annotations

import uuid
from importlib.metadata import version

import pytest
from psrpcore import ServerPipeline
from psrpcore.types import PSInvocationState, RunspacePoolState

from labsim import psrp_compat as compat

pytestmark = pytest.mark.unit


def test_pinned_version() -> None:
    assert version("psrpcore") == compat.PSRPCORE_VERSION


def test_private_members_still_exist() -> None:
    pool = compat.LabRunspacePool()
    for name in ("_send_buffer", "_min_runspaces", "_max_runspaces", "pipeline_table"):
        assert hasattr(pool, name), name
    compat.set_runspace_limits(pool, minimum=2, maximum=5)
    assert (pool.min_runspaces, pool.max_runspaces) == (2, 5)


def test_pipeline_states_and_bom() -> None:
    pool = compat.LabRunspacePool()
    pool.state = RunspacePoolState.Opened  # as after the client's InitRunspacePool
    pipeline = ServerPipeline(pool, uuid.uuid4())
    compat.set_state(pipeline, PSInvocationState.Running, emit=False)
    running = pipeline.state
    assert running == PSInvocationState.Running and not pool._send_buffer
    pipeline.write_output("x")
    [queued] = pool._send_buffer
    assert queued.data[40:43] == compat.UTF8_BOM
    from psrpcore.types import PSObject
    record = PSObject()
    compat.fail(pipeline, record)
    assert pipeline.state == PSInvocationState.Failed
    assert pool._send_buffer[-1].data[40:43] == compat.UTF8_BOM
    compat.forget_pipeline(pool, pipeline.pipeline_id)
    assert pipeline.pipeline_id not in pool.pipeline_table
