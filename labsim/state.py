"""The lab's state in one SQLite database: what every simulated host holds, the fault switches and the log of
every command run.

Layout (one file, ``<state dir>/lab.sqlite3``, WAL so that ``labsim show``/``fault`` in another process can read
and write while ``labsim serve`` runs):

* ``host_docs``/``baseline_docs``: one JSON document per host (registry, certificate stores, IIS sites, MgmtSvc
  settings, SQL settings rows, PEP state). Small, read and rewritten whole inside a transaction.
* ``files``/``baseline_files``: file systems as rows (one per file or directory, content as a BLOB), so chunked
  staging appends without rewriting a document. The infrastructure share is the pseudo-host ``SHARE_HOST``.
* ``faults``: the run-time switches (``Fault``), read on every request.
* ``invocations``: every command invoked, parameters already redacted by the caller of :meth:`record_start`.
* ``wire_counts``: per host, how many runspace pools were opened (``pool_open``) and pipelines run (``pipeline``),
  so that a client's session reuse can be measured (one pipeline may run several commands).

Nothing is cached in-process: every command reads the database, so a change made by another process (a fault,
a reset) applies to the next command.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labsim.runtime import Fault

SHARE_HOST = "\\\\su1fileserver"  # pseudo-host holding \\su1fileserver\... files
FAULT_KINDS = frozenset({"down", "slow", "auth_broken", "wsman_fault", "command_error", "command_terminating",
                         "command_hang", "command_noop", "command_corrupt"})
DB_NAME = "lab.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS host_docs (host TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS baseline_docs (host TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    host TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, is_dir INTEGER NOT NULL,
    content BLOB, modified REAL NOT NULL, PRIMARY KEY (host, key));
CREATE TABLE IF NOT EXISTS baseline_files (
    host TEXT NOT NULL, key TEXT NOT NULL, path TEXT NOT NULL, is_dir INTEGER NOT NULL,
    content BLOB, modified REAL NOT NULL, PRIMARY KEY (host, key));
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, kind TEXT NOT NULL, command TEXT,
    seconds REAL NOT NULL DEFAULT 0, message TEXT);
CREATE INDEX IF NOT EXISTS faults_host ON faults (host);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, host TEXT NOT NULL, user TEXT NOT NULL, configuration TEXT NOT NULL,
    command TEXT NOT NULL, parameters TEXT NOT NULL, started REAL NOT NULL, ended REAL,
    outcome TEXT NOT NULL DEFAULT 'running', error TEXT);
CREATE INDEX IF NOT EXISTS invocations_host ON invocations (host, command);
CREATE TABLE IF NOT EXISTS wire_counts (
    host TEXT NOT NULL, kind TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (host, kind));
"""


@dataclass(frozen=True)
class HostsPoint:
    """The rows of ``host_docs`` and ``files`` at one moment (see :meth:`LabState.save_hosts`)."""

    docs: tuple[tuple[Any, ...], ...]
    files: tuple[tuple[Any, ...], ...]


def path_key(path: str) -> str:
    """Windows paths compare case-insensitively."""
    return path.lower()


class LabState:
    """The database of one lab. Thread-safe: one connection guarded by a lock (commands are short; the long
    ones, like the PEP's polling, hold no transaction while they wait)."""

    def __init__(self, db_path: str | Path) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=10000")
        with self._lock:
            self._db.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, state_dir: str | Path) -> LabState:
        return cls(Path(state_dir) / DB_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- transactions -------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def tx(self) -> Iterator[Tx]:
        """A write transaction (BEGIN IMMEDIATE: serialised with other processes too). Host documents touched
        through it are written back on success; everything is rolled back on an exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            tx = Tx(self._db)
            try:
                yield tx
                tx._flush()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def read_doc(self, host: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT doc FROM host_docs WHERE host = ?", (host,)).fetchone()
        return json.loads(row[0]) if row else {}

    def read(self, baseline: bool = False) -> Tx:
        """A read-only view (autocommit; each query sees the latest committed state), of the baseline if asked."""
        return Tx(self._db, read_only=True, lock=self._lock, baseline=baseline)

    # -- baseline -------------------------------------------------------------------------------------------
    def is_seeded(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM meta WHERE key = 'seeded'").fetchone() is not None

    def seed(self, lab_name: str, build: Callable[[Tx], None]) -> bool:
        """Seed the baseline once (``build`` fills the current state); later starts keep what is there.
        Returns True when it seeded now."""
        with self.tx() as tx:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'seeded'").fetchone()
            if row is not None:
                if row[0] != lab_name:
                    raise ValueError(f"state database {self.path} belongs to lab {row[0]!r}, not {lab_name!r}; "
                                     f"use another --state-dir")
                return False
            build(tx)
            tx._flush()
            self._db.execute("DELETE FROM baseline_docs")
            self._db.execute("INSERT INTO baseline_docs SELECT host, doc FROM host_docs")
            self._db.execute("DELETE FROM baseline_files")
            self._db.execute("INSERT INTO baseline_files SELECT * FROM files")
            self._db.execute("INSERT INTO meta (key, value) VALUES ('seeded', ?)", (lab_name,))
            return True

    def reset(self) -> None:
        """Put every host back to its baseline and clear the faults (the invocation log is kept)."""
        with self.tx():
            self._db.execute("DELETE FROM host_docs")
            self._db.execute("INSERT INTO host_docs SELECT host, doc FROM baseline_docs")
            self._db.execute("DELETE FROM files")
            self._db.execute("INSERT INTO files SELECT * FROM baseline_files")
            self._db.execute("DELETE FROM faults")

    def save_hosts(self) -> HostsPoint:
        """What every host holds now (documents and files), for :meth:`restore_hosts`: a test that needs the same
        hosts many times builds them once."""
        with self._lock:
            return HostsPoint(tuple(self._db.execute("SELECT host, doc FROM host_docs").fetchall()),
                              tuple(self._db.execute("SELECT * FROM files").fetchall()))

    def restore_hosts(self, point: HostsPoint) -> None:
        """Put every host back to what :meth:`save_hosts` saw and clear the faults (the invocation log and the
        baseline are kept), as :meth:`reset` does for the baseline."""
        with self.tx():
            self._db.execute("DELETE FROM host_docs")
            self._db.executemany("INSERT INTO host_docs (host, doc) VALUES (?, ?)", point.docs)
            self._db.execute("DELETE FROM files")
            self._db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)", point.files)
            self._db.execute("DELETE FROM faults")

    # -- faults -----------------------------------------------------------------------------------------------
    def set_fault(self, fault: Fault) -> None:
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {', '.join(sorted(FAULT_KINDS))}")
        with self.tx():
            # One switch per (host, kind, command): setting it again replaces it.
            self._db.execute("DELETE FROM faults WHERE host = ? AND kind = ? AND IFNULL(lower(command), '') = ?",
                             (fault.host, fault.kind, (fault.command or "").lower()))
            self._db.execute("INSERT INTO faults (host, kind, command, seconds, message) VALUES (?, ?, ?, ?, ?)",
                             (fault.host, fault.kind, fault.command, fault.seconds, fault.message))

    def clear_faults(self, host: str | None = None) -> None:
        with self.tx():
            if host is None:
                self._db.execute("DELETE FROM faults")
            else:
                self._db.execute("DELETE FROM faults WHERE host = ?", (host,))

    def faults(self, host: str | None = None) -> list[Fault]:
        with self._lock:
            if host is None:
                rows = self._db.execute("SELECT host, kind, command, seconds, message FROM faults ORDER BY id")
            else:
                rows = self._db.execute(
                    "SELECT host, kind, command, seconds, message FROM faults WHERE host = ? ORDER BY id", (host,))
            return [Fault(host=r[0], kind=r[1], command=r[2], seconds=r[3], message=r[4]) for r in rows.fetchall()]

    # -- invocation log -----------------------------------------------------------------------------------
    def record_start(self, *, host: str, user: str, configuration: str, command: str,
                     parameters: list[Any]) -> int:
        """``parameters`` must already be redacted (see labsim.hosts.base.redact)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO invocations (host, user, configuration, command, parameters, started) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (host, user, configuration, command, json.dumps(parameters), time.time()))
            return int(cur.lastrowid or 0)

    def record_end(self, invocation_id: int, outcome: str, error: str | None = None) -> None:
        with self._lock:
            self._db.execute("UPDATE invocations SET ended = ?, outcome = ?, error = ? WHERE id = ?",
                             (time.time(), outcome, error, invocation_id))

    def invocations(self, host: str | None = None, command: str | None = None,
                    after: int = 0) -> list[dict[str, Any]]:
        """Recorded commands, oldest first, those with an id above ``after`` (see :meth:`last_invocation_id`).
        ``command`` matches case-insensitively, on the full name or the leaf file name of a script path."""
        sql = ("SELECT id, host, user, configuration, command, parameters, started, ended, outcome, error "
               "FROM invocations")
        where: list[str] = []
        args: list[Any] = []
        if host is not None:
            where.append("lower(host) = ?")
            args.append(host.lower())
        if after:
            where.append("id > ?")
            args.append(after)
        with self._lock:
            rows = self._db.execute(sql + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id",
                                    args).fetchall()
        out = []
        for r in rows:
            name = r[4]
            if command is not None and command.lower() not in (name.lower(), name.lower().rsplit("\\", 1)[-1]):
                continue
            out.append({"id": r[0], "host": r[1], "user": r[2], "configuration": r[3], "command": name,
                        "parameters": json.loads(r[5]), "started": r[6], "ended": r[7], "outcome": r[8],
                        "error": r[9]})
        return out

    def last_invocation_id(self) -> int:
        """The id of the latest recorded command (0 before the first): what ``invocations(after=...)`` counts from."""
        with self._lock:
            return int(self._db.execute("SELECT IFNULL(MAX(id), 0) FROM invocations").fetchone()[0])

    def count_wire(self, host: str, kind: str) -> None:
        """One more ``kind`` (pool_open | pipeline) on ``host``."""
        with self._lock:
            self._db.execute("INSERT INTO wire_counts (host, kind, n) VALUES (?, ?, 1) "
                             "ON CONFLICT (host, kind) DO UPDATE SET n = n + 1", (host, kind))

    def wire_counts(self, host: str | None = None) -> dict[str, dict[str, int]]:
        """{host: {kind: count}} since the database was created (a reset keeps them, like the invocation log)."""
        sql = "SELECT host, kind, n FROM wire_counts"
        args: tuple[str, ...] = ()
        if host is not None:
            sql, args = sql + " WHERE lower(host) = ?", (host.lower(),)
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for h, kind, n in self._db.execute(sql, args).fetchall():
                out.setdefault(h, {})[kind] = n
        return out

    def hosts(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT host FROM host_docs ORDER BY host")]


class Tx:
    """Access to host documents and files inside one transaction (or, read-only, outside any)."""

    def __init__(self, db: sqlite3.Connection, read_only: bool = False,
                 lock: threading.RLock | None = None, baseline: bool = False) -> None:
        self._db = db
        # Table names are constants chosen here, never user input.
        self._docs_table = "baseline_docs" if baseline else "host_docs"
        self._files_table = "baseline_files" if baseline else "files"
        self._docs: dict[str, dict[str, Any]] = {}
        self._read_only = read_only
        self._lock = lock or contextlib.nullcontext()

    def _q(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    def doc(self, host: str) -> dict[str, Any]:
        """The host's document; mutate it in place (written back when the transaction commits)."""
        if host not in self._docs:
            row = self._q(f"SELECT doc FROM {self._docs_table} WHERE host = ?", (host,)).fetchone()
            self._docs[host] = json.loads(row[0]) if row else {}
        return self._docs[host] if not self._read_only else copy.deepcopy(self._docs[host])

    def put_doc(self, host: str, doc: dict[str, Any]) -> None:
        self._docs[host] = doc

    def _flush(self) -> None:
        if self._read_only:
            return
        for host, doc in self._docs.items():
            self._db.execute("INSERT INTO host_docs (host, doc) VALUES (?, ?) "
                             "ON CONFLICT (host) DO UPDATE SET doc = excluded.doc",
                             (host, json.dumps(doc, sort_keys=True)))

    # -- files ----------------------------------------------------------------------------------------------
    def file(self, host: str, path: str) -> FileRow | None:
        row = self._q(f"SELECT path, is_dir, length(content), modified FROM {self._files_table} "
                      "WHERE host = ? AND key = ?",
                      (host, path_key(path))).fetchone()
        return FileRow(row[0], bool(row[1]), row[2] or 0, row[3]) if row else None

    def read_file(self, host: str, path: str) -> bytes | None:
        row = self._q(f"SELECT content FROM {self._files_table} WHERE host = ? AND key = ? AND is_dir = 0",
                      (host, path_key(path))).fetchone()
        return bytes(row[0] or b"") if row else None

    def children(self, host: str, path: str, recurse: bool = False) -> list[FileRow]:
        prefix = path_key(path).rstrip("\\") + "\\"
        rows = self._q(f"SELECT path, is_dir, length(content), modified FROM {self._files_table} "
                       "WHERE host = ? AND substr(key, 1, ?) = ? ORDER BY key", (host, len(prefix), prefix))
        out = []
        for r in rows.fetchall():
            rest = r[0][len(prefix):]
            if recurse or "\\" not in rest:
                out.append(FileRow(r[0], bool(r[1]), r[2] or 0, r[3]))
        return out

    def write_file(self, host: str, path: str, content: bytes, append: bool = False) -> None:
        now = time.time()
        if append:
            cur = self._db.execute("UPDATE files SET content = CAST(content || ? AS BLOB), modified = ? "
                                   "WHERE host = ? AND key = ? AND is_dir = 0", (content, now, host, path_key(path)))
            if cur.rowcount:
                return
        self._db.execute("INSERT INTO files (host, key, path, is_dir, content, modified) VALUES (?, ?, ?, 0, ?, ?) "
                         "ON CONFLICT (host, key) "
                         "DO UPDATE SET content = excluded.content, modified = excluded.modified",
                         (host, path_key(path), path, content, now))

    def make_dir(self, host: str, path: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO files (host, key, path, is_dir, content, modified) "
                         "VALUES (?, ?, ?, 1, NULL, ?)", (host, path_key(path), path, time.time()))

    def remove(self, host: str, path: str, recurse: bool = False) -> None:
        key = path_key(path)
        self._db.execute("DELETE FROM files WHERE host = ? AND key = ?", (host, key))
        if recurse:
            prefix = key.rstrip("\\") + "\\"
            self._db.execute("DELETE FROM files WHERE host = ? AND substr(key, 1, ?) = ?", (host, len(prefix), prefix))

    def all_files(self, host: str) -> list[tuple[str, bool, bytes]]:
        rows = self._q(f"SELECT path, is_dir, content FROM {self._files_table} WHERE host = ? ORDER BY key", (host,))
        return [(r[0], bool(r[1]), bytes(r[2] or b"")) for r in rows.fetchall()]


class FileRow:
    __slots__ = ("path", "is_dir", "length", "modified")

    def __init__(self, path: str, is_dir: bool, length: int, modified: float) -> None:
        self.path, self.is_dir, self.length, self.modified = path, is_dir, length, modified


def files_summary(tx: Tx, host: str) -> dict[str, Any]:
    """Deterministic view of a file system for snapshots: directories as {"dir": true}, files by size and hash."""
    out: dict[str, Any] = {}
    for path, is_dir, content in tx.all_files(host):
        out[path] = {"dir": True} if is_dir else {"size": len(content),
                                                   "sha256": hashlib.sha256(content).hexdigest().upper()}
    return out


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
