"""The labsim host tests' shared fixtures: ``lab`` (labsim's default lab) and ``rt`` (a LabRuntime on it, with
its state in tmp_path), defined in hosts_helpers."""

from tests.labsim.hosts_helpers import lab, rt  # noqa: F401 - fixtures, found by pytest through this conftest
