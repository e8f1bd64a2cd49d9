"""LabServer: every lab host's WinRM listeners (HTTPS and HTTP), the IIS https site listeners, run-time faults and
the idle-shell reaper, in one object.

    with LabServer(lab, runtime, state_dir) as server:
        address, port = server.endpoint("wapcomputer1")          # HTTPS WinRM
        WSMan(address, port=port, cert_validation=str(server.ca_file), ...)

The lab CA lives in ``<state_dir>/pki`` (:func:`labsim.pki.lab_ca`); every WinRM listener certificate is issued by
it with the host's FQDN, computer name and address as SANs, so clients verify against ``server.ca_file``.

Security posture (a loopback lab, but modelled on Windows defaults): only the auth methods of ``Host.winrm.auth``
are offered; wrong credentials get 401 with the challenges again; CredSSP's delegated password must match the lab
user. One deliberate lab convenience: ``allow_unencrypted=True`` (the default) lets Basic, or Negotiate with
``encryption="never"``, run over plain HTTP, which Windows refuses unless AllowUnencrypted is set. Pass
``allow_unencrypted=False`` to get Windows' behaviour (401).
"""

from __future__ import annotations

import ipaddress
import logging
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from labsim.auth import HostAuth, write_ntlm_user_file
from labsim.envelope import Principal, Request
from labsim.hosts.latency import connection_cost
from labsim.lab import Host, Lab, Role
from labsim.pki import LabCA, lab_ca
from labsim.runtime import Fault, HostRuntime, HttpsBinding
from labsim.shell import Shell
from labsim.transport import Listener, ListenerError, SiteEndpoint, WinRMEndpoint, server_tls_context
from labsim.wsman import WSManService

log = logging.getLogger(__name__)

FAULT_POLL_SECONDS = 0.2
BINDING_POLL_SECONDS = 0.5
REAPER_POLL_SECONDS = 1.0


class LabServerError(RuntimeError):
    """The lab server cannot start (e.g. an address is taken); the message says which listener and why."""


class _MeteredService(WSManService):
    """A host's WSMan service that charges what Windows charges for a runspace pool open and for a pipeline
    (``settings.connection_cost_factor``) and counts both (``runtime.wire_event``, when the runtime has it), so
    that a client's session reuse shows in time and in numbers."""

    def __init__(self, *args: object, cost_factor: float = 0.0,
                 on_event: Callable[[str, str], None] | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._cost_factor = cost_factor
        self._on_event = on_event

    def _charge(self, kind: str) -> None:
        if self._cost_factor > 0:
            time.sleep(connection_cost(kind, self._cost_factor))

    def _create(self, req: Request, principal: Principal, endpoint: str) -> str:
        self._charge("pool_open")
        body = super()._create(req, principal, endpoint)
        if self._on_event is not None:
            self._on_event(self.host, "pool_open")
        return body

    def _command(self, shell: Shell, req: Request) -> str:
        self._charge("pipeline")
        body = super()._command(shell, req)
        if self._on_event is not None:
            self._on_event(self.host, "pipeline")
        return body


@dataclass
class _HostState:
    host: Host
    service: WSManService
    host_auth: HostAuth
    listeners: list[Listener]
    faults: list[Fault]


@dataclass
class _Site:
    binding: HttpsBinding
    listener: Listener | _NullListener


class LabServer:
    """All listeners of one lab. ``start()`` binds everything (or raises LabServerError), ``stop()`` closes it."""

    def __init__(self, lab: Lab, runtime: HostRuntime, state_dir: Path, *, allow_unencrypted: bool = True,
                 listener_certificate: Callable[[Host, LabCA], tuple[bytes, bytes]] | None = None) -> None:
        self.lab = lab
        self.runtime = runtime
        self.state_dir = Path(state_dir)
        self.allow_unencrypted = allow_unencrypted
        # Test hook: issues a host's WinRM HTTPS certificate (cert PEM, key PEM) instead of the default (the lab
        # CA, SANs = FQDN, computer name, address), e.g. an expired one or one that lacks a name.
        self.listener_certificate = listener_certificate
        self._hosts: dict[str, _HostState] = {}
        self._sites: dict[tuple[str, int], _Site] = {}
        # start() reconciles once itself while the sites thread may already be at it: two reconciles at once
        # would both bind a new site, and the loser's failure would replace the winner's listener.
        self._sites_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._ca: LabCA | None = None
        self._started = False

    # -- public API ------------------------------------------------------------------------------------------
    @property
    def ca_file(self) -> Path:
        """The lab CA certificate (PEM) that clients pass as ``cert_validation`` / CA bundle."""
        if self._ca is None:
            self._ca = lab_ca(self.state_dir, self.lab)
        return self._ca.ca_file

    def endpoint(self, host_name: str, https: bool = True) -> tuple[str, int]:
        """(address, port) of a host's WinRM listener. Raises KeyError for an unknown host or missing listener."""
        host = self.lab.host(host_name)
        port = host.winrm.https_port if https else host.winrm.http_port
        if port is None:
            raise KeyError(f"host {host.name} has no {'https' if https else 'http'} WinRM listener")
        return host.address, port

    def faults_in_force(self, host_name: str) -> list[Fault]:
        """The faults the listeners of a host apply right now (the database is polled every
        ``FAULT_POLL_SECONDS``): tests wait for a switch to take effect with it."""
        state = self._hosts.get(self.lab.host(host_name).name)
        return list(state.faults) if state is not None else []

    def service(self, host_name: str) -> WSManService:
        """The WSMan service of a host (shell table), for tests and diagnostics."""
        return self._hosts[self.lab.host(host_name).name].service

    def start(self) -> LabServer:
        if self._started:
            return self
        self._ca = lab_ca(self.state_dir, self.lab)
        self._tmp = tempfile.TemporaryDirectory(prefix="labsim-")
        try:
            for host in self.lab.hosts:
                self._start_host(host)
        except ListenerError as exc:
            self.stop()
            raise LabServerError(f"labsim cannot start lab {self.lab.name!r}: {exc.strerror}. Stop whatever "
                                 "listens there (another labsim?) or change the lab file's address/ports.") from exc
        self._started = True
        for target, name in ((self._watch_faults, "faults"), (self._watch_bindings, "sites"),
                             (self._reap_shells, "reaper")):
            thread = threading.Thread(target=target, name=f"labsim-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._reconcile_sites()
        log.info("labsim: lab %s listening (%d hosts)", self.lab.name, len(self.lab.hosts))
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self._threads.clear()
        for state in self._hosts.values():
            for listener in state.listeners:
                listener.stop()
            state.service.close()
        with self._sites_lock:
            for site in self._sites.values():
                site.listener.stop()
            self._sites.clear()
        self._hosts.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._started = False

    def __enter__(self) -> LabServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- hosts -----------------------------------------------------------------------------------------------
    def _start_host(self, host: Host) -> None:
        assert self._ca is not None and self._tmp is not None
        tmp = Path(self._tmp.name)
        service = _MeteredService(host.name, host.fqdn, self.runtime,
                                  privileged_endpoint=host.has(Role.PRIVILEGED_ENDPOINT), release=host.release,
                                  operation_timeout=self.lab.settings.operation_timeout,
                                  idle_shell_timeout=self.lab.settings.idle_shell_timeout,
                                  cost_factor=self.lab.settings.connection_cost_factor,
                                  on_event=getattr(self.runtime, "wire_event", None))
        ntlm_file = tmp / f"{host.name}.ntlm"
        write_ntlm_user_file(ntlm_file, host)
        state = _HostState(host, service, None, [], [])  # type: ignore[arg-type]
        state.host_auth = HostAuth(host, ntlm_file, self.allow_unencrypted,
                                   auth_broken=lambda: any(f.kind == "auth_broken" for f in state.faults))
        self._hosts[host.name] = state
        latency = lambda: sum(f.seconds for f in state.faults if f.kind == "slow")  # noqa: E731
        wsman_fault = lambda: next((f for f in state.faults if f.kind == "wsman_fault"), None)  # noqa: E731
        if host.winrm.https_port is not None:
            if self.listener_certificate is not None:
                cert_pem, key_pem = self.listener_certificate(host, self._ca)
            else:
                cert_pem, key_pem = self._ca.issue(host.fqdn, [host.fqdn, host.name.lower()], [host.address])
            cert_file, key_file = tmp / f"{host.name}.crt", tmp / f"{host.name}.key"
            cert_file.write_bytes(cert_pem)
            key_file.touch(0o600)
            key_file.write_bytes(key_pem)
            der = x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER)
            endpoint = WinRMEndpoint(service, state.host_auth, https=True,
                                     endpoint_url=f"https://{host.fqdn}:{host.winrm.https_port}/wsman",
                                     tls_context=server_tls_context(str(cert_file), str(key_file)),
                                     tls_cert_der=der, latency=latency, wsman_fault=wsman_fault)
            state.listeners.append(Listener(f"{host.name}:https", host.address, host.winrm.https_port,
                                            endpoint.serve))
        if host.winrm.http_port is not None:
            endpoint = WinRMEndpoint(service, state.host_auth, https=False,
                                     endpoint_url=f"http://{host.fqdn}:{host.winrm.http_port}/wsman",
                                     latency=latency, wsman_fault=wsman_fault)
            state.listeners.append(Listener(f"{host.name}:http", host.address, host.winrm.http_port,
                                            endpoint.serve))
        for listener in state.listeners:
            listener.start()

    # -- background work -------------------------------------------------------------------------------------
    def _watch_faults(self) -> None:
        while not self._stop.wait(FAULT_POLL_SECONDS):
            for state in list(self._hosts.values()):
                try:
                    faults = list(self.runtime.faults(state.host.name))
                except Exception:  # noqa: BLE001 - a runtime hiccup must not stop fault polling
                    log.exception("labsim: reading faults of %s failed", state.host.name)
                    continue
                down = any(f.kind == "down" for f in faults)
                # A host that is down serves nothing: its IIS https sites (the connector endpoint) go with WinRM.
                sites = [s.listener for s in list(self._sites.values())
                         if s.binding.host == state.host.name and isinstance(s.listener, Listener)]
                for listener in [*state.listeners, *sites]:
                    try:
                        if down and not listener.suspended:
                            listener.suspend()
                        elif not down and listener.suspended:
                            listener.resume()
                    except ListenerError as exc:
                        log.error("labsim: %s", exc.strerror)
                # Published only once the listeners obey them: faults_in_force() means "in effect".
                state.faults = faults

    def _watch_bindings(self) -> None:
        while not self._stop.wait(BINDING_POLL_SECONDS):
            self._reconcile_sites()

    def _reconcile_sites(self) -> None:
        with self._sites_lock:
            self._reconcile_sites_locked()

    def _reconcile_sites_locked(self) -> None:
        try:
            wanted = {(b.address, b.port): b for b in self.runtime.https_bindings()}
        except Exception:  # noqa: BLE001
            log.exception("labsim: reading https bindings failed")
            return
        for key, site in list(self._sites.items()):
            binding = wanted.get(key)
            if binding is None or binding != site.binding:
                site.listener.stop()
                del self._sites[key]
        for key, binding in wanted.items():
            if key in self._sites or self._stop.is_set():
                continue
            try:
                self._sites[key] = self._start_site(binding)
            except (ListenerError, ssl.SSLError, ValueError, OSError) as exc:
                log.error("labsim: cannot serve site %s of %s on %s:%d: %s", binding.site, binding.host,
                          binding.address, binding.port, exc)
                # Remember the failure so it is not retried twice a second; a changed binding retries.
                self._sites[key] = _Site(binding, _NullListener())

    def _start_site(self, binding: HttpsBinding) -> _Site:
        assert self._tmp is not None
        ipaddress.ip_address(binding.address)
        tmp = Path(self._tmp.name)
        stem = f"site-{binding.address}-{binding.port}-{binding.thumbprint}"
        cert_file, key_file = tmp / f"{stem}.crt", tmp / f"{stem}.key"
        cert_file.write_bytes(binding.cert_pem)
        key_file.touch(0o600)
        key_file.write_bytes(binding.key_pem)
        endpoint = SiteEndpoint(binding.host, binding.site, server_tls_context(str(cert_file), str(key_file)))
        listener = Listener(f"{binding.host}:{binding.site}", binding.address, binding.port, endpoint.serve)
        listener.start()
        log.info("labsim: serving site %s of %s on %s:%d", binding.site, binding.host, binding.address,
                 binding.port)
        return _Site(binding, listener)

    def _reap_shells(self) -> None:
        while not self._stop.wait(REAPER_POLL_SECONDS):
            for state in list(self._hosts.values()):
                state.service.reap_idle()


class _NullListener:
    """Placeholder for a site whose listener could not start."""

    suspended = True

    def stop(self) -> None:
        pass
