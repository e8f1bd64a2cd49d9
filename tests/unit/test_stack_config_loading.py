"""Loading the running stack's configuration: what the engine hands the program (every value as text, objects as
JSON, the keys it marks secret, PULUMI_CONFIG for values it sets in the environment) becomes the stack's settings,
and the stack settings file is found where the project says (stackConfigDir) to name each password written in
plain text."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.config as runtime_config
import pytest

from components.config import ConfigurationError, load_stack_config
from components.config.loading import _stack_file

pytestmark = pytest.mark.unit

NS = "wapconnector"
CLOUDS = [{"name": "AzurePack_1", "connectorFqdn": "wapcomputer1.contoso.com"}]


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """A program run by the engine in an empty project directory (no Pulumi.yaml: no stack file to read), with no
    configuration yet; the engine's values are put back afterwards."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PULUMI_CONFIG", raising=False)
    config, secrets = runtime_config.CONFIG.set({}), runtime_config._SECRET_KEYS.set(set())
    yield monkeypatch
    runtime_config.CONFIG.reset(config)
    runtime_config._SECRET_KEYS.reset(secrets)


def run_with(values: dict[str, Any], secret: tuple[str, ...] = ()) -> None:
    """The values as the engine hands them over: text, objects and lists as JSON."""
    runtime_config.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()},
                                  list(secret))


def refused() -> list[str]:
    with pytest.raises(ConfigurationError) as err:
        load_stack_config()
    return err.value.problems


def lab_values() -> dict[str, Any]:
    """A whole lab's configuration (hosts, credentials), as the engine hands it over."""
    from tests.unit.test_stack_config import lab_raw

    return {f"{NS}:{k}": v for k, v in lab_raw().items()}


def test_the_stacks_values_are_read_from_json_text_and_other_namespaces_ignored(engine: pytest.MonkeyPatch) -> None:
    run_with({"aws:region": "westeurope", f"{NS}:clouds": CLOUDS, f"{NS}:adopt": "true", f"{NS}:preflight": "warn",
              "other:clouds": "[not ours]"})
    config = load_stack_config()
    assert [c.name for c in config.clouds] == ["AzurePack_1"]
    assert config.adopt is True and config.preflight == "warn"


def test_values_the_engine_puts_in_the_environment_count_and_the_stacks_own_win(engine: pytest.MonkeyPatch) -> None:
    engine.setenv("PULUMI_CONFIG", json.dumps({f"{NS}:clouds": json.dumps(CLOUDS), f"{NS}:preflight": "warn"}))
    run_with({f"{NS}:preflight": "enforce"})
    config = load_stack_config()
    assert config.clouds[0].name == "AzurePack_1" and config.preflight == "enforce"


def test_a_value_that_is_text_stays_text(engine: pytest.MonkeyPatch) -> None:
    """Only an object or a list is decoded: ``adopt: "1"`` is the text the operator wrote, refused as such."""
    run_with({f"{NS}:clouds": CLOUDS, f"{NS}:adopt": "1"})
    assert refused() == [f"{NS}:adopt: must be true or false (got '1')"]


def test_a_value_that_looks_like_json_but_is_not_is_refused_quoting_what_was_written(
        engine: pytest.MonkeyPatch) -> None:
    run_with({f"{NS}:clouds": CLOUDS, f"{NS}:adopt": "[true"})
    assert refused() == [f"{NS}:adopt: must be true or false (got '[true')"]


def test_passwords_the_engine_does_not_hold_as_secrets_are_refused(engine: pytest.MonkeyPatch) -> None:
    values = lab_values()
    run_with(values)
    assert refused() == [f"{NS}:credentials: holds passwords in plain text; set each password with pulumi config "
                         f"set --secret --path '{NS}:credentials.<name>.password' <value>"]
    run_with(values, secret=(f"{NS}:credentials",))
    assert load_stack_config().deploys_lab


def _project(root: Path, stack_file: str, *, config_dir: str | None = "stacks") -> Path:
    root.joinpath("Pulumi.yaml").write_text("name: wapconnector\nruntime: python\n"
                                            + (f"stackConfigDir: {config_dir}\n" if config_dir else ""))
    folder = root / (config_dir or ".")
    folder.mkdir(exist_ok=True)
    path = folder / stack_file
    path.write_text(f"config:\n  {NS}:credentials:\n    wapcomputer1:\n      username: u\n      password: Pl41n-1\n"
                    f"  {NS}:extra:\n    password: Pl41n-2\n")
    return path


def test_one_password_written_in_plain_text_in_the_stack_file_is_named(engine: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    """The engine says only that credentials holds *a* secret; the stack file says which password is plain. A key
    this run did not get (``extra``: another --config-file) is not judged."""
    _project(tmp_path, "Pulumi.lab.yaml")
    engine.setattr(pulumi, "get_stack", lambda: "lab")
    run_with(lab_values(), secret=(f"{NS}:credentials",))
    found = refused()
    assert found == [f"{NS}:credentials.wapcomputer1.password: in plain text in the stack file; set it as a secret: "
                     f"pulumi config set --secret --path '{NS}:credentials.wapcomputer1.password'"]
    assert not any("Pl41n" in p for p in found)


@pytest.mark.parametrize(("project_file", "stack", "config_dir", "stack_file"), [
    ("Pulumi.yaml", "lab", "stacks", "Pulumi.lab.yaml"),
    ("Pulumi.yml", "lab", "stacks", "Pulumi.lab.yml"),
    ("Pulumi.yaml", "acme/wapconnector/lab", "stacks", "Pulumi.lab.yaml"),  # a fully qualified stack name
    ("Pulumi.yaml", "lab", None, "Pulumi.lab.yaml"),  # no stackConfigDir: beside Pulumi.yaml
])
def test_the_stack_file_is_found_where_the_project_keeps_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           project_file: str, stack: str, config_dir: str | None,
                                                           stack_file: str) -> None:
    expected = _project(tmp_path, stack_file, config_dir=config_dir)
    if project_file != "Pulumi.yaml":
        (tmp_path / "Pulumi.yaml").rename(tmp_path / project_file)
    (tmp_path / "program").mkdir()
    monkeypatch.setattr(pulumi, "get_stack", lambda: stack)
    assert _stack_file(tmp_path / "program") == expected


@pytest.mark.parametrize("project", ["name: [unclosed\n", "- a list, not a project\n", "name: caf\u00e9\n"])
def test_a_project_file_that_says_nothing_usable_leaves_the_stack_file_beside_it_or_none(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, project: str) -> None:
    (tmp_path / "Pulumi.yaml").write_text(project, encoding="utf-8")
    (tmp_path / "Pulumi.lab.yaml").write_text("config: {}\n")
    monkeypatch.setattr(pulumi, "get_stack", lambda: "lab")
    expected = None if "unclosed" in project else tmp_path / "Pulumi.lab.yaml"
    assert _stack_file(tmp_path) == expected
