"""Certificate: a CA-issued certificate installed in a Windows certificate store of a host.

Two uses in the procedure [doc]: the connector's TLS certificate with its private key in
``Cert:\\LocalMachine\\My`` of each tenant portal VM (from a PFX: the one :class:`providers.pki.IssuedCertificate`
makes, or the operator's), and the chain in ``Cert:\\LocalMachine\\CA`` (or ``Root``) of AzS-WASP01, which must
trust the connector. ``existing=True``: the operator's certificate already in the store, by ``thumbprint``; it is
verified read-only (there, with its private key, fit for ``serves_fqdns`` and issued by ``issuer_pem``) and never
imported, marked or removed.

``check`` refuses, before any host is touched: a self-signed leaf, a PFX whose key or certificate does not match
``cert_pem``, a certificate expired or expiring within ``expiry_threshold_days``, SANs that do not cover
``serves_fqdns``.

Two modules, by job:
  * providers/_certificate_model.py, pure: the inputs and :func:`problems` (check's rules), the assumptions about
    the hosts, what a read observes, :func:`compare` and the remove / import steps for its differences;
  * this module, against the hosts: the read (``Get-Item Cert:\\LocalMachine\\<store>\\<thumbprint>``, for
    CA/Root both stores in one call), the PFX / CER staging and import, the chain bookkeeping of delete, the
    template's hooks (:class:`CertificateProvider`) and the :class:`Certificate` resource.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import pulumi
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pulumi.dynamic import CheckFailure, CheckResult

from providers import certs, ownership, remote

# Importable from here too, where callers and tests find them.
from providers._certificate_model import (  # noqa: F401
    ACCEPTED_STORES,
    DEFAULT_STAGING_DIR,
    IMPORT,
    OWNERSHIP_RESOURCE,
    REMOVE,
    CertificateInputs,
    CertificateObserved,
    CertificateStep,
    chain_store_facts,
    compare,
    desired_thumbprint,
    parse_chain,
    parse_read,
    pfx_chain_thumbprints,
    problems,
    read_statements,
    steps_for,
    still_needed,
)
from providers.base import LabResource, is_unknown
from providers.errors import ConfigurationError, ConnectorError, HostDidNotConverge
from providers.facts.certstore import store_path
from providers.facts.files import PathExists
from providers.facts.markers import OwnershipMarker
from providers.hostops import only_expected_errors, stage_bytes
from providers.remote import Converged, HostResourceProvider, Identity
from providers.transport import Command, HostConnection, Secret, Transport

# ---------------------------------------------------------------------------------------------------------------
# Provider

STEP_READ = "read certificate"
STEP_INSTALL = "install certificate"
STEP_DELETE = "remove certificate"
#: Every step name of this resource: the keys of a connection's ``step_timeouts`` (docs/reliability.md).
STEPS = (STEP_READ, STEP_INSTALL, STEP_DELETE)


def marker_path(store: str, thumbprint: str) -> str:
    return ownership.marker_path(OWNERSHIP_RESOURCE, f"{store}-{thumbprint}")


def thing(store: str, thumbprint: str) -> str:
    return f"certificate {thumbprint} in {store_path(store)}"


def read_certificate(t: Transport, conn: HostConnection, store: str, thumbprint: str, with_marker: bool = False,
                     raw_data: bool = False) -> tuple[CertificateObserved | None, ownership.Marker | None]:
    """The certificate (and, when asked, its ownership marker) in one invocation."""
    mark = OwnershipMarker(marker_path(store, thumbprint))
    stmts = [*read_statements(store, thumbprint, raw_data), *(mark.statements() if with_marker else [])]
    result = t.run(conn, STEP_READ, stmts, idempotent=True, accept_errors=True)
    only_expected_errors(conn, STEP_READ, stmts, result)
    outputs = result.outputs
    marker = mark.parse(outputs[-1]) if with_marker else None
    return parse_read(store, thumbprint, outputs[:-1] if with_marker else outputs), marker


def _remove(t: Transport, conn: HostConnection, step: str, stores: Sequence[str], thumbprint: str) -> None:
    cmds = [Command("Remove-Item", {"Path": store_path(s, thumbprint)}) for s in stores]
    result = t.run(conn, step, cmds, idempotent=True, accept_errors=True)
    only_expected_errors(conn, step, cmds, result)


def _import(t: Transport, conn: HostConnection, inputs: CertificateInputs, thumbprint: str) -> None:
    """Stage the PFX (My) or the DER certificate (CA/Root), import it, always remove the staged file."""
    if inputs.store == "My":
        assert inputs.pfx_base64 is not None and inputs.pfx_password is not None
        data = base64.b64decode(inputs.pfx_base64)
        staged = f"{inputs.staging_dir}\\{thumbprint}.pfx"
        importer = Command("Import-PfxCertificate", {
            "FilePath": staged, "CertStoreLocation": store_path("My"), "Password": Secret(inputs.pfx_password)})
    else:
        data = certs.load_certificate(inputs.cert_pem or "").public_bytes(serialization.Encoding.DER)
        staged = f"{inputs.staging_dir}\\{thumbprint}.cer"
        importer = Command("Import-Certificate", {"FilePath": staged, "CertStoreLocation": store_path(inputs.store)})
    stage_bytes(t, conn, STEP_INSTALL, {staged: data}, chunk_size=256 * 1024, directories=[inputs.staging_dir])
    try:
        # Not re-sent by the transport: a lost reply may hide a finished import; the rerun reads first.
        t.run(conn, STEP_INSTALL, importer, idempotent=False)
    finally:
        # The PFX is encrypted, but it should not outlive the import either way.
        cleanup = Command("Remove-Item", {"Path": staged}, ["Force"])
        try:
            result = t.run(conn, STEP_INSTALL, cleanup, idempotent=True, accept_errors=True)
            only_expected_errors(conn, STEP_INSTALL, cleanup, result)
        except ConnectorError as exc:
            pulumi.log.warn(f"{conn.fqdn}: could not remove the staged file {staged} ({exc}); delete it by hand")


def chain_still_needed(t: Transport, conn: HostConnection, thumbprint: str,
                       chain: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """Read (one call) every other certificate in My and the ``chain`` certificates still there; see
    :func:`still_needed`."""
    stmts = [p for fact in chain_store_facts(chain) for p in fact.statements()]
    result = t.run(conn, STEP_DELETE, stmts, idempotent=True, accept_errors=True)
    only_expected_errors(conn, STEP_DELETE, stmts, result)
    my, *chain_outputs = result.outputs
    return still_needed(*parse_chain(thumbprint, my, chain, chain_outputs))


def _present_in_chain_stores(t: Transport, conn: HostConnection, thumbprints: Sequence[str]) -> list[tuple[str, str]]:
    """(store, thumbprint) for each of ``thumbprints`` found in CA or Root; one pipeline."""
    probes = [(store, thumb) for thumb in thumbprints for store in ("CA", "Root")]
    if not probes:
        return []
    facts = [PathExists(store_path(s, thumb)) for s, thumb in probes]
    result = t.run(conn, STEP_INSTALL, [p for fact in facts for p in fact.statements()], idempotent=True)
    return [probe for probe, fact, found in zip(probes, facts, result.outputs, strict=True)
            if fact.parse(found) is True]


def _outputs(inputs: CertificateInputs, observed: CertificateObserved, adopted: bool,
             cert: x509.Certificate | None = None) -> dict[str, Any]:
    cert = cert or certs.load_certificate(inputs.cert_pem or "")
    return {
        "thumbprint": certs.thumbprint(cert),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "expires_at": cert.not_valid_after_utc.isoformat(),
        "found_in_store": observed.store,
        "has_private_key": observed.has_private_key,
        "adopted": adopted,
        "existing": inputs.existing,
    }


def verify_existing(t: Transport, conn: HostConnection,
                    inputs: CertificateInputs) -> tuple[CertificateObserved, x509.Certificate]:
    """The operator's certificate, read back (read-only): in My, with its private key, fit for every name in
    ``serves_fqdns`` and issued by ``issuer_pem``. A ConnectorError listing every problem otherwise."""
    thumb = inputs.cert_thumbprint()
    observed, _ = read_certificate(t, conn, "My", thumb, raw_data=True)
    where = f"{conn.fqdn}, step '{STEP_READ}': certificate {thumb}"
    if observed is None:
        raise ConnectorError(f"{where} is not in {store_path('My')}; the operator's connector certificate must be "
                             f"there (with its private key) on every tenant portal VM: import it there, or correct "
                             f"the thumbprint", host=conn.fqdn, step=STEP_READ)
    found: list[str] = []
    if not observed.has_private_key:
        found.append("it is there without its private key: import it from its PFX, with the key")
    cert = None
    if observed.raw_data is not None:
        try:
            cert = x509.load_der_x509_certificate(observed.raw_data)
        except ValueError:
            cert = None
    if cert is None or certs.thumbprint(cert) != thumb:
        found.append("the host did not return the certificate itself (RawData) for the thumbprint asked")
    else:
        issuer = certs.load_certificate(inputs.issuer_pem) if inputs.issuer_pem else None
        fqdns: list[str | None] = [*inputs.serves_fqdns] or [None]
        for fqdn in fqdns:
            found += [p for p in certs.certificate_problems(
                cert, fqdn=fqdn, issuer=issuer, expiry_threshold_days=inputs.expiry_threshold_days) if p not in found]
    if found:
        raise ConnectorError(f"{where} in {store_path('My')} cannot be the connector's: " + "; ".join(found),
                             host=conn.fqdn, step=STEP_READ)
    assert cert is not None
    return observed, cert


@dataclass(frozen=True)
class Imported:
    """What an import did besides the certificate itself: the PFX's CA certificates (``chain``), which of them
    were in CA/Root before (``before``), and those it added there (``added``, recorded for delete)."""

    chain: tuple[str, ...]
    before: frozenset[tuple[str, str]]
    added: tuple[tuple[str, str], ...]


def chain_added(done: Converged[CertificateObserved, CertificateStep]) -> list[list[str]]:
    """The ``chain_added`` output: the CA certificates this converge's import added ([] when nothing was imported)."""
    return [list(p) for p in done.applied.added] if isinstance(done.applied, Imported) else []


def _roll_back(t: Transport, conn: HostConnection, store: str, thumb: str, chain: Sequence[str],
               before: Set[tuple[str, str]]) -> None:
    """A failed import may still have landed (an import that wrote an error record, a lost reply): remove what it
    added, or the rerun would find the certificate and *adopt* it, and destroy would leave it behind. Best effort:
    a host that cannot be reached keeps it (the error being raised says why)."""
    try:
        _remove(t, conn, STEP_INSTALL, [store], thumb)
        for chain_store, chain_thumb in _present_in_chain_stores(t, conn, chain):
            if (chain_store, chain_thumb) not in before:
                _remove(t, conn, STEP_INSTALL, [chain_store], chain_thumb)
    except ConnectorError as exc:
        pulumi.log.warn(f"{conn.fqdn}: could not roll back the failed import of certificate {thumb} ({exc}); "
                        f"the next run will adopt it: remove it from {store_path(store)} by hand first")


class CertificateProvider(HostResourceProvider[CertificateInputs, CertificateObserved, CertificateStep]):
    """Installs one certificate in one store; read by thumbprint; delete removes it (unless adopted). The template
    of providers.remote; an ``existing`` certificate is only verified (:func:`verify_existing`), never marked."""

    inputs_model = CertificateInputs
    ownership_resource = OWNERSHIP_RESOURCE
    compare = staticmethod(compare)
    # pfx_base64/pfx_password are not compared: check proves the PFX holds this certificate's key, and PFX bytes
    # differ on every export (random salt), so a re-exported PFX must not look like a change.
    settings = ("store", "existing", "serves_fqdns", "expiry_threshold_days", "staging_dir", "issuer_pem")
    replace_on = ("store", "existing", "cert_pem")

    def checked(self, news: Mapping[str, Any], result: CheckResult) -> CheckResult:
        if result.failures:
            return result
        if any(is_unknown(news.get(k)) for k in ("cert_pem", "pfx_base64", "pfx_password", "serves_fqdns",
                                                   "store", "expiry_threshold_days", "existing", "thumbprint",
                                                   "issuer_pem")):
            return result  # checked again once the values are known
        inputs = CertificateInputs.model_validate(remote.inputs_only(news))
        return CheckResult(result.inputs, [CheckFailure(p, r) for p, r in problems(inputs)])

    def parse_inputs(self, t: Transport, props: Mapping[str, Any],
                     olds: Mapping[str, Any] | None) -> CertificateInputs:
        """The same rules as check (field and cross-field), as a ConfigurationError."""
        inputs = CertificateInputs.parse(props)
        found = [f"{p}: {r}" for p, r in problems(inputs)] or \
            (["owner: an existing certificate is the operator's: it takes no owner marker"]
             if inputs.existing and inputs.owner is not None else [])
        if found:
            raise ConfigurationError(found, host=inputs.connection.fqdn, subject="Certificate inputs")
        return inputs

    def identity(self, inputs: CertificateInputs) -> Identity:
        return _identity(inputs.connection.fqdn, inputs.store, inputs.cert_thumbprint())

    def stored_identity(self, t: Transport, props: Mapping[str, Any]) -> Identity:
        return _identity(remote.connection_of(props).fqdn, props["store"], props["thumbprint"])

    def read_host(self, t: Transport, inputs: CertificateInputs) -> tuple[CertificateObserved | None,
                                                                           ownership.Marker | None]:
        return read_certificate(t, inputs.connection, inputs.store, inputs.cert_thumbprint(),
                                with_marker=inputs.owner is not None)

    def read_state(self, t: Transport, props: Mapping[str, Any]) -> tuple[CertificateObserved | None,
                                                                           ownership.Marker | None]:
        return read_certificate(t, remote.connection_of(props), props["store"], props["thumbprint"],
                                with_marker=True)

    def desired_values(self, inputs: CertificateInputs) -> Mapping[str, Any]:
        return {"store": inputs.store, "existing": inputs.existing, "thumbprint": inputs.thumbprint,
                "cert_pem": inputs.cert_pem}

    def observed_values(self, observed: CertificateObserved | None, inputs: CertificateInputs) -> Mapping[str, Any]:
        return {"thumbprint": inputs.cert_thumbprint() if observed else None,
                "has_private_key": observed.has_private_key if observed else None}


    def steps(self, differences: list[ownership.Difference], inputs: CertificateInputs,
              observed: CertificateObserved | None) -> list[CertificateStep]:
        return steps_for(differences, observed)

    def changed_settings(self, olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
        return [name for name in self.settings
                if (bool(news.get(name)) != bool(olds.get(name)) if name == "existing" else
                    news.get(name) != olds.get(name) if name == "store" else
                    is_unknown(news.get(name)) or olds.get(name) != news.get(name))]

    def replace_deletes_first(self, olds: Mapping[str, Any], news: Mapping[str, Any], replaces: list[str]) -> bool:
        # Same certificate, other store (or host): remove the old one first, or the new one would be found in
        # the old place (CA and Root count for each other) and adopted, and then the old delete removes it.
        return bool(replaces) and desired_thumbprint(news) == olds.get("thumbprint")

    def converge_steps(self, t: Transport, inputs: CertificateInputs) -> Converged[CertificateObserved,
                                                                                  CertificateStep]:
        if inputs.existing:  # the operator's: verified read-only; what apply would return is the certificate
            observed, cert = verify_existing(t, inputs.connection, inputs)
            return Converged(observed, [], cert)
        return super().converge_steps(t, inputs)

    def apply(self, t: Transport, inputs: CertificateInputs, steps: list[CertificateStep],
              observed: CertificateObserved | None) -> Imported | None:
        conn, thumb = inputs.connection, inputs.cert_thumbprint()
        if REMOVE in steps and observed is not None:
            _remove(t, conn, STEP_INSTALL, [observed.store], thumb)
        if IMPORT not in steps:
            return None
        chain: list[str] = []
        if inputs.store == "My":
            assert inputs.pfx_base64 is not None and inputs.pfx_password is not None
            chain = pfx_chain_thumbprints(inputs.pfx_base64, inputs.pfx_password)
        before = frozenset(_present_in_chain_stores(t, conn, chain))
        try:
            _import(t, conn, inputs, thumb)
            added = tuple(p for p in _present_in_chain_stores(t, conn, chain) if p not in before)
        except ConnectorError:
            _roll_back(t, conn, inputs.store, thumb, chain, before)
            raise
        return Imported(tuple(chain), before, added)

    def undo(self, t: Transport, inputs: CertificateInputs, applied: Any) -> None:
        if isinstance(applied, Imported):
            _roll_back(t, inputs.connection, inputs.store, inputs.cert_thumbprint(), applied.chain, applied.before)

    def did_not_converge(self, inputs: CertificateInputs, observed: CertificateObserved | None,
                         left: list[CertificateStep]) -> HostDidNotConverge:
        return HostDidNotConverge(
            inputs.connection.fqdn, STEP_INSTALL,
            f"certificate {inputs.cert_thumbprint()} was imported but is "
            f"{'not in ' + store_path(inputs.store) if observed is None else 'there without its private key'}",
            hint=f"check the host's certificate store (Get-ChildItem {store_path(inputs.store)}) and retry")

    def prior_values(self, observed: CertificateObserved, inputs: CertificateInputs) -> dict[str, Any]:
        return {"has_private_key": observed.has_private_key}

    def claim(self, t: Transport, inputs: CertificateInputs) -> dict[str, Any]:
        if inputs.owner is None and not inputs.existing:
            # Ownership not tracked (direct use): a certificate already there is adopted all the same.
            found, _ = self.read_host(t, inputs)
            return {"adopted": found is not None}
        return super().claim(t, inputs)

    def outputs(self, props: Mapping[str, Any], inputs: CertificateInputs,
                done: Converged[CertificateObserved, CertificateStep],
                olds: Mapping[str, Any] | None) -> dict[str, Any]:
        if inputs.existing:
            return {**_outputs(inputs, done.observed, False, done.applied), "chain_added": []}
        added = chain_added(done)
        if olds is not None:  # what earlier imports added stays recorded
            added = [c for c in olds.get("chain_added") or [] if c not in added] + added
        return {**_outputs(inputs, done.observed, bool(olds and olds.get("adopted"))), "chain_added": added}

    def resource_id(self, inputs: CertificateInputs, outputs: Mapping[str, Any]) -> str:
        return f"{inputs.connection.fqdn}:{inputs.store}:{outputs['thumbprint']}"

    def read_outputs(self, props: Mapping[str, Any], observed: CertificateObserved | None) -> dict[str, Any]:
        assert observed is not None
        return {"found_in_store": observed.store, "has_private_key": observed.has_private_key}

    def read_before_delete(self, t: Transport, props: Mapping[str, Any],
                           tracked: bool) -> tuple[CertificateObserved | None, ownership.Marker | None]:
        if not tracked:
            return None, None
        return None, ownership.read(t, remote.connection_of(props), ownership.STEP_UNMARK,
                                    marker_path(props["store"], props["thumbprint"]))

    def leave(self, t: Transport, props: Mapping[str, Any], found: CertificateObserved | None) -> None:
        pulumi.log.warn(f"{remote.connection_of(props).fqdn}: certificate {props['thumbprint']} was already in "
                        f"{store_path(props['store'])} before this stack installed it; leaving it in place")

    def remove(self, t: Transport, props: Mapping[str, Any], found: CertificateObserved | None) -> None:
        if props.get("existing"):
            return  # the operator's certificate: never removed (the host is not even contacted)
        conn = remote.connection_of(props)
        store, thumb = props["store"], props["thumbprint"]
        stores = [store]
        found_in = props.get("found_in_store")
        if found_in in ACCEPTED_STORES[store] and found_in != store:
            stores.append(found_in)
        _remove(t, conn, STEP_DELETE, stores, thumb)
        # The chain certificates our import added (none when they were already trusted before), unless another
        # certificate in My still chains to them: a renewed certificate imported before this one is deleted
        # found them there (so did not record them) and its binding still needs them to send its chain.
        added = [(str(c[0]), str(c[1])) for c in props.get("chain_added") or []]
        needed = chain_still_needed(t, conn, thumb, added) if added else set()
        for chain_store, chain_thumb in added:
            if (chain_store, chain_thumb) in needed:
                pulumi.log.warn(f"{conn.fqdn}: leaving CA certificate {chain_thumb} in {store_path(chain_store)} "
                                f"(this stack's import of certificate {thumb} added it): another certificate in "
                                f"{store_path('My')} still chains to it")
                continue
            _remove(t, conn, STEP_DELETE, [chain_store], chain_thumb)


def _identity(host: str, store: str, thumbprint: str) -> Identity:
    return Identity(host, marker_path(store, thumbprint), thing(store, thumbprint))


# ---------------------------------------------------------------------------------------------------------------
# Resource

SECRET_OUTPUTS = ("pfx_base64", "pfx_password")


class Certificate(LabResource, name="Certificate"):
    """A certificate in ``Cert:\\LocalMachine\\<store>`` of one host.

    Store ``My``: ``cert_pem`` plus ``pfx_base64``/``pfx_password`` (e.g. an IssuedCertificate's outputs, or the
    operator's PFX), with ``serves_fqdns`` the names it serves. Store ``CA``/``Root``: ``cert_pem`` only (the chain,
    for AzS-WASP01). ``existing=True`` with ``thumbprint`` (and ``issuer_pem``): the operator's certificate already
    in My, verified and never imported, marked or removed (give it no ``owner``). Outputs: ``thumbprint``,
    ``subject``, ``issuer``, ``expires_at``, ``found_in_store``, ``has_private_key``, ``adopted`` (it was there
    before: delete leaves it), ``existing``. Secret: ``connection``, ``pfx_base64``, ``pfx_password``."""

    thumbprint: pulumi.Output[str]
    subject: pulumi.Output[str]
    issuer: pulumi.Output[str]
    expires_at: pulumi.Output[str]
    found_in_store: pulumi.Output[str]
    has_private_key: pulumi.Output[bool]
    adopted: pulumi.Output[bool]

    def __init__(self, name: str, *, connection: pulumi.Input[dict[str, Any]],
                 cert_pem: pulumi.Input[str] | None = None, store: pulumi.Input[str] = "My",
                 pfx_base64: pulumi.Input[str] | None = None, pfx_password: pulumi.Input[str] | None = None,
                 serves_fqdns: pulumi.Input[Sequence[str]] = (),
                 expiry_threshold_days: pulumi.Input[int] = certs.RENEWAL_MARGIN_DAYS,
                 staging_dir: str = DEFAULT_STAGING_DIR, owner: pulumi.Input[str] | None = None,
                 adopt: pulumi.Input[bool] = False, existing: bool = False, thumbprint: str | None = None,
                 issuer_pem: pulumi.Input[str] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {
            "connection": remote.password_secret(connection), "store": store, "cert_pem": cert_pem,
            "pfx_base64": None if pfx_base64 is None else pulumi.Output.secret(pfx_base64),
            "pfx_password": None if pfx_password is None else pulumi.Output.secret(pfx_password),
            "serves_fqdns": list(serves_fqdns) if isinstance(serves_fqdns, tuple) else serves_fqdns,
            "expiry_threshold_days": expiry_threshold_days, "staging_dir": staging_dir,
            "thumbprint": thumbprint if existing else None, "subject": None, "issuer": None, "expires_at": None,
            "found_in_store": None, "has_private_key": None, "chain_added": None,
            **ownership.resource_props(owner, adopt),
        }
        # Only when given: the inputs of the lab CA's certificates stay exactly as they were.
        if existing:
            props["existing"] = True
        if issuer_pem is not None:
            props["issuer_pem"] = issuer_pem
        super().__init__(CertificateProvider(), name, props,
                         pulumi.ResourceOptions.merge(opts, remote.secret_outputs(*SECRET_OUTPUTS)))
