from pathlib import Path

import pytest

from tests.e2e.pulumi_cli import PulumiProject, engine_missing


@pytest.fixture
def project(tmp_path: Path) -> PulumiProject:
    missing = engine_missing()
    if missing:
        # make test always builds the engine first, so under CI this never triggers; a bare `pytest` run
        # without the engine must say why instead of passing silently.
        pytest.fail(missing)
    return PulumiProject(tmp_path)
