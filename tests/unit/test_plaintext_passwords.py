"""The plaintext-secrets rule at its edges: which values of a stack settings file count as a password written in
plain text (a password-named key anywhere, at the top or in a list; not an empty one, not an encrypted one), and
a settings file that is not a mapping at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.config import plain_text_paths, plaintext_secrets

pytestmark = pytest.mark.unit

SECURE = {"secure": "v1:abcd"}


@pytest.mark.parametrize(("settings", "expected"), [
    ({"wapconnector:adminPassword": "Pl41n"}, ["wapconnector:adminPassword"]),  # a top-level password key
    ({"wapconnector:adminPassword": SECURE}, []),
    ({"wapconnector:sqlPassphrases": ["one", SECURE, "two"]},
     ["wapconnector:sqlPassphrases[0]", "wapconnector:sqlPassphrases[2]"]),  # each plain item of a password list
    ({"wapconnector:credentials": {"a": {"username": "u", "password": ""}}}, []),  # empty: missing, not plain
    ({"wapconnector:credentials": {"a": {"username": "u", "password": None}}}, []),
    ({"wapconnector:clouds": [{"name": "A", "sqlServer": "sql.contoso.com"}]}, []),  # not a password
    ({"aws:password": "theirs"}, []),  # another namespace's settings are not ours to judge
])
def test_which_values_are_passwords_in_plain_text(settings: dict[str, Any], expected: list[str]) -> None:
    assert plaintext_secrets(settings) == expected


@pytest.mark.parametrize("config", [["wapconnector:password", "x"], "wapconnector:password: x", 7])
def test_a_config_section_that_is_not_a_mapping_holds_no_password(config: Any) -> None:
    assert plaintext_secrets(config) == []


@pytest.mark.parametrize("text", ["- config\n- wapconnector:password\n", "config: [a, b]\n", "key: [unclosed\n", ""])
def test_a_stack_file_that_is_not_a_settings_mapping_names_no_password(tmp_path: Path, text: str) -> None:
    stack_file = tmp_path / "Pulumi.lab.yaml"
    stack_file.write_text(text)
    assert plain_text_paths(stack_file) == set()
    assert plain_text_paths(None) == set()
