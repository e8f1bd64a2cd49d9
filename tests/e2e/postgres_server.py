"""A throwaway PostgreSQL server for the team-state tests: Debian's postgresql binaries (initdb, pg_ctl, psql
under /usr/lib/postgresql/*/bin, installed by `make bootstrap`), a fresh cluster in a temp dir, listening on
127.0.0.1 only, on a free port, with TLS (a test CA issues the server's certificate for 127.0.0.1) and
password authentication. initdb refuses to run as root, so under root the server runs as `nobody`.

    with postgres_server() as pg:
        env = {"PULUMI_BACKEND_URL": pg.url(), "PGPASSWORD": pg.password}   # no password in the URL
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"
USER = "pulumi"
DATABASE = "pulumi_state"


def server_bin() -> Path | None:
    """The newest Debian PostgreSQL server's bin directory, or None when the package is missing."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


@dataclass
class PostgresServer:
    bin: Path
    base: Path
    port: int
    password: str  # the `pulumi` role's
    ca_file: Path

    def url(self, table: str = "pulumi_state") -> str:
        """The backend URL the README documents: no password (PGPASSWORD carries it), TLS verified."""
        return (f"postgres://{USER}@{HOST}:{self.port}/{DATABASE}"
                f"?sslmode=verify-full&sslrootcert={self.ca_file}&table={table}")

    def sql(self, statement: str) -> str:
        """Runs one statement as the `pulumi` role; returns psql's unaligned output."""
        env = {**os.environ, "PGPASSWORD": self.password, "PGSSLMODE": "verify-full",
               "PGSSLROOTCERT": str(self.ca_file)}
        proc = subprocess.run([str(self.bin / "psql"), "-h", HOST, "-p", str(self.port), "-U", USER, "-d", DATABASE,
                               "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
                              env=env, capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise AssertionError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _tls_files(base: Path) -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "team-state test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = base / "ca.pem", base / "server.crt", base / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    bin_dir = server_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's server is not installed: run `make bootstrap` (it installs Debian's "
                           "postgresql package)")
    base = Path(tempfile.mkdtemp(prefix="wapc-pg-"))
    run_as: list[str] = []
    try:
        superuser_password, password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        (base / "pwfile").write_text(superuser_password + "\n")
        ca_file, cert, key = _tls_files(base)
        if os.geteuid() == 0:  # initdb refuses root; the cluster belongs to `nobody`
            run_as = ["runuser", "-u", "nobody", "--"]
            for path in (base, base / "pwfile", cert, key):
                shutil.chown(path, "nobody")
        (base / "pwfile").chmod(0o600)
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", "postgres",
                        f"--pwfile={base / 'pwfile'}", "--auth=scram-sha-256", "-E", "UTF8", "--no-instructions"],
                       check=True, capture_output=True, timeout=120)
        port = _free_port()
        options = (f"-c listen_addresses={HOST} -c port={port} -c unix_socket_directories={base} -c ssl=on "
                   f"-c ssl_cert_file={cert} -c ssl_key_file={key}")
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "server.log"),
                        "-o", options, "-w", "-t", "60", "start"], check=True, capture_output=True, timeout=90)
        admin = {**os.environ, "PGPASSWORD": superuser_password, "PGSSLMODE": "require"}
        for statement in (f"CREATE ROLE {USER} LOGIN PASSWORD '{password}'",
                          f"CREATE DATABASE {DATABASE} OWNER {USER}"):
            subprocess.run([str(bin_dir / "psql"), "-h", HOST, "-p", str(port), "-U", "postgres", "-d", "postgres",
                            "-v", "ON_ERROR_STOP=1", "-c", statement], env=admin, check=True, capture_output=True,
                           timeout=30)
        yield PostgresServer(bin_dir, base, port, password, ca_file)
    finally:
        if (base / "data" / "postmaster.pid").exists():
            subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-m", "fast", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
