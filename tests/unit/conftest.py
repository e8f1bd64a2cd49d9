"""Fixtures shared by the unit tests of the components: ``monitor`` (Pulumi's mocks recording every registered
resource), defined in test_components.py."""

from tests.unit.test_components import monitor  # noqa: F401 - a fixture, found by pytest through this conftest
