"""The SQLite store: results keyed by content hash, so sweeps resume and share work.

Layout (WAL journal, so readers such as ``dse results`` never block a running sweep):

- ``tasks``: one mapper run of one layer shape on one design point, keyed by a hash of the problem,
  the full arch spec (energies included), mapper settings, backend, seed and code version. A task
  row and all its mapping rows are written in ONE transaction, so a kill -9 leaves either the whole
  task or nothing, and a rerun recomputes exactly the missing tasks.
- ``mappings``: the mappings a task kept (rank 0 = the mapper's best), with energy, cycles,
  utilization, EDP, per-component energy and the map.yaml text.
- ``resilience``: SDC rate, CI and FIT of one mapping for one trained model / layer / fault setting.
- ``front_tasks`` + ``fronts``: a resilience-aware search of one layer (objective ``sdc_fit`` or
  ``edp_sdc_fit``) and the mappings of its EDP x estimated-SDC-FIT front kept for injection;
  ``sweep_fronts`` says which front each (sweep, design point, model, layer) uses.
- ``sweeps`` + ``sweep_layers``: which (design point, model, layer) entries a named sweep holds;
  rewritten at the start of each run (results themselves are never deleted).
- views ``results`` (one row per sweep x design point x model x layer x mapping) and ``network``
  (per sweep x design point x model: layer values x repeat count, best mapping per layer).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dse import validate
from dse.errors import InputError

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
    point_key TEXT PRIMARY KEY, design TEXT NOT NULL, label TEXT NOT NULL,
    params TEXT NOT NULL, arch TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks (
    task_key TEXT PRIMARY KEY, point_key TEXT NOT NULL, problem TEXT NOT NULL,
    mapper TEXT NOT NULL, evaluated INTEGER, valid INTEGER, wall_s REAL, created REAL);
CREATE TABLE IF NOT EXISTS mappings (
    row_key TEXT PRIMARY KEY, task_key TEXT NOT NULL REFERENCES tasks(task_key),
    rank INTEGER NOT NULL, roles TEXT NOT NULL,
    energy_pJ REAL NOT NULL, cycles INTEGER NOT NULL, utilization REAL NOT NULL,
    edp REAL NOT NULL, macs INTEGER NOT NULL, components TEXT NOT NULL, mapping TEXT NOT NULL,
    UNIQUE (task_key, rank));
CREATE TABLE IF NOT EXISTS resilience (
    res_key TEXT PRIMARY KEY, row_key TEXT NOT NULL, model_key TEXT NOT NULL,
    layer_path TEXT NOT NULL, settings_key TEXT NOT NULL, sdc_rate REAL NOT NULL,
    sdc_lo REAL NOT NULL, sdc_hi REAL NOT NULL, fit REAL, injections INTEGER,
    wall_s REAL, detail TEXT, created REAL);
CREATE TABLE IF NOT EXISTS timeloop_checks (
    row_key TEXT PRIMARY KEY REFERENCES mappings(row_key), energy_pJ REAL, cycles INTEGER,
    energy_rel REAL, agree INTEGER NOT NULL, error TEXT);
CREATE TABLE IF NOT EXISTS front_tasks (
    front_key TEXT PRIMARY KEY, front_size INTEGER NOT NULL, evaluated INTEGER, wall_s REAL,
    created REAL);
CREATE TABLE IF NOT EXISTS fronts (
    row_key TEXT PRIMARY KEY, front_key TEXT NOT NULL REFERENCES front_tasks(front_key),
    rank INTEGER NOT NULL, pick INTEGER NOT NULL, baseline INTEGER NOT NULL,
    energy_pJ REAL NOT NULL,
    cycles INTEGER NOT NULL, utilization REAL NOT NULL, edp REAL NOT NULL, macs INTEGER NOT NULL,
    estimate_fit REAL NOT NULL, mapping TEXT NOT NULL, UNIQUE (front_key, rank));
CREATE TABLE IF NOT EXISTS sweep_fronts (
    sweep TEXT NOT NULL, point_key TEXT NOT NULL, model TEXT NOT NULL, layer_path TEXT NOT NULL,
    front_key TEXT NOT NULL, PRIMARY KEY (sweep, point_key, model, layer_path));
CREATE INDEX IF NOT EXISTS resilience_lookup
    ON resilience (row_key, model_key, layer_path, settings_key);
CREATE TABLE IF NOT EXISTS claims (
    unit TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS failures (
    unit TEXT PRIMARY KEY, sweep TEXT NOT NULL, kind TEXT NOT NULL, label TEXT NOT NULL,
    reason TEXT NOT NULL, attempts INTEGER NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS sweeps (
    sweep TEXT PRIMARY KEY, config TEXT NOT NULL, settings_key TEXT NOT NULL, updated REAL);
CREATE TABLE IF NOT EXISTS sweep_layers (
    sweep TEXT NOT NULL, point_key TEXT NOT NULL, model TEXT NOT NULL, model_key TEXT NOT NULL,
    layer_index INTEGER NOT NULL, layer TEXT NOT NULL, layer_path TEXT NOT NULL,
    count INTEGER NOT NULL, task_key TEXT NOT NULL,
    PRIMARY KEY (sweep, point_key, model, layer_index));
CREATE VIEW IF NOT EXISTS results AS
SELECT sl.sweep, p.design, p.label AS point, sl.point_key, sl.model, sl.layer_index, sl.layer,
       sl.layer_path, sl.count, m.rank, m.roles, m.energy_pJ, m.cycles, m.utilization,
       m.edp, m.macs, m.components, m.mapping, r.sdc_rate, r.sdc_lo, r.sdc_hi, r.fit,
       r.injections AS faults, m.row_key, sl.task_key
FROM sweep_layers sl
JOIN sweeps s ON s.sweep = sl.sweep
JOIN points p ON p.point_key = sl.point_key
JOIN mappings m ON m.task_key = sl.task_key
LEFT JOIN resilience r ON r.row_key = m.row_key AND r.model_key = sl.model_key
     AND r.layer_path = sl.layer_path AND r.settings_key = s.settings_key;
CREATE VIEW IF NOT EXISTS network AS
SELECT sweep, design, point, point_key, model,
       COUNT(*) AS layers,
       SUM(count) AS layer_instances,
       SUM(energy_pJ * count) AS energy_pJ,
       SUM(cycles * count) AS cycles,
       SUM(energy_pJ * count) * 1e-12 * SUM(cycles * count) AS edp,
       SUM(macs * count) AS macs,
       SUM(utilization * cycles * count) / SUM(cycles * count) AS utilization,
       2.0 * SUM(macs * count) / SUM(cycles * count) AS gflops_1ghz,
       COUNT(sdc_rate) AS layers_scored,
       SUM(sdc_rate * cycles * count) / SUM(CASE WHEN sdc_rate IS NOT NULL THEN cycles * count END)
           AS sdc_rate,
       SUM(sdc_lo * cycles * count) / SUM(CASE WHEN sdc_rate IS NOT NULL THEN cycles * count END)
           AS sdc_lo,
       SUM(sdc_hi * cycles * count) / SUM(CASE WHEN sdc_rate IS NOT NULL THEN cycles * count END)
           AS sdc_hi,
       SUM(fit * cycles * count) / SUM(CASE WHEN fit IS NOT NULL THEN cycles * count END) AS fit
FROM results WHERE rank = 0
GROUP BY sweep, point_key, model;
"""
# Network SDC rate (and FIT): a fault striking at a uniformly random time hits the layer running
# then, so per-layer rates are weighted by the cycles each layer (x its repeat count) occupies the
# hardware; layers without a resilience score are left out of both sums (see layers_scored).


@dataclass
class MappingRow:
    """One kept mapping of a task, as the executor hands it to the store."""

    row_key: str
    rank: int
    roles: str  # comma list of why it was kept: best, pareto, topk
    energy_pJ: float
    cycles: int
    utilization: float
    edp: float
    macs: int
    components: dict[str, float]
    mapping: str
    check: dict[str, Any] | None = None  # backend timeloop-check: timeloop-model's verdict


@dataclass
class ResilienceRow:
    res_key: str
    row_key: str
    model_key: str
    layer_path: str
    settings_key: str
    sdc_rate: float
    sdc_lo: float
    sdc_hi: float
    fit: float | None
    faults: int | None  # stored in the table column ``injections`` (shown as ``faults``)
    wall_s: float
    detail: dict[str, Any]


class Store:
    """A sweep database. Opening never overwrites: a file that is not a dse store is an error."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._conn = _open_readonly(self.path) if readonly else _open(self.path)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------- writing
    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One transaction; a full disk or a read-only file system is one line naming the store
        (the transaction rolls back, so every row stored before stays as it was)."""
        try:
            with self._conn:
                yield
        except sqlite3.OperationalError as exc:
            if "full" in str(exc) or "readonly" in str(exc) or "disk I/O" in str(exc):
                raise InputError(f"cannot write the store ({exc}); rows stored before are kept,"
                                 " a rerun resumes", file=str(self.path)) from None
            raise

    def begin_sweep(self, sweep: str, config: dict[str, Any], settings_key: str,
                    layers: Sequence[dict[str, Any]], points: Sequence[dict[str, Any]], *,
                    conflict: Callable[[dict[str, Any]], str | None] | None = None) -> None:
        """Record what this sweep consists of (replacing the sweep's previous membership only).

        A sweep name is bound to its config: ``conflict(stored_config)`` says why an existing
        sweep of this name is a different experiment, and then nothing is changed (checked and
        written in one IMMEDIATE transaction, so two runs racing for a name cannot both win).
        """
        with self._writing():
            self._conn.execute("BEGIN IMMEDIATE")
            row = self._conn.execute("SELECT config FROM sweeps WHERE sweep = ?",
                                     (sweep,)).fetchone()
            why = conflict(json.loads(row[0])) if row and conflict else None
            if why:
                raise InputError(f"sweep {sweep!r} in this store is another experiment ({why}); "
                                 "rerun it unchanged, or give this one its own --name",
                                 file=str(self.path), field="name")
            self._conn.executemany(
                "INSERT OR IGNORE INTO points VALUES (:point_key, :design, :label, :params, :arch)",
                points)
            self._conn.execute(
                "INSERT OR REPLACE INTO sweeps VALUES (?, ?, ?, ?)",
                (sweep, json.dumps(config, sort_keys=True), settings_key, time.time()))
            self._conn.execute("DELETE FROM sweep_layers WHERE sweep = ?", (sweep,))
            self._conn.execute("DELETE FROM sweep_fronts WHERE sweep = ?", (sweep,))
            self._conn.executemany(
                "INSERT INTO sweep_layers VALUES (:sweep, :point_key, :model, :model_key,"
                " :layer_index, :layer, :layer_path, :count, :task_key)",
                [{**row, "sweep": sweep} for row in layers])

    def put_task(self, task_key: str, point_key: str, problem: dict[str, Any],
                 mapper: dict[str, Any], rows: Iterable[MappingRow], *, evaluated: int | None,
                 valid: int | None, wall_s: float) -> None:
        """Store a finished task with all its mappings atomically (idempotent on rerun)."""
        with self._writing():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (task_key, point_key, json.dumps(problem, sort_keys=True),
                 json.dumps(mapper, sort_keys=True), evaluated, valid, wall_s, time.time()))
            if cur.rowcount == 0:
                return  # another worker (or an earlier run) already stored it
            self._conn.executemany(
                "INSERT INTO mappings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.row_key, task_key, r.rank, r.roles, float(r.energy_pJ),
                  int(r.cycles), float(r.utilization), float(r.edp), int(r.macs),
                  json.dumps(r.components), r.mapping) for r in rows])  # keeps level order
            self._conn.executemany(
                "INSERT INTO timeloop_checks VALUES (?, ?, ?, ?, ?, ?)",
                [(r.row_key, r.check["energy_pJ"], r.check["cycles"], r.check["energy_rel"],
                  int(r.check["agree"]), r.check["error"]) for r in rows if r.check])

    def put_front(self, result: Any) -> None:
        """Store a finished front search (``tasks.FrontResult``) with its rows atomically."""
        with self._writing():
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO front_tasks VALUES (?, ?, ?, ?, ?)",
                (result.front_key, result.front_size, result.evaluated, result.wall_s,
                 time.time()))
            if cur.rowcount == 0:
                return
            self._conn.executemany(
                "INSERT INTO fronts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.row_key, result.front_key, r.rank, int(r.pick), int(r.baseline),
                  r.energy_pJ, r.cycles,
                  r.utilization, r.edp, r.macs, r.estimate_fit, r.mapping) for r in result.rows])

    def use_front(self, sweep: str, point_key: str, model: str, layer_path: str,
                  front_key: str) -> None:
        """Record that a sweep's layer uses this front (membership, like ``sweep_layers``)."""
        with self._writing():
            self._conn.execute("INSERT OR REPLACE INTO sweep_fronts VALUES (?, ?, ?, ?, ?)",
                               (sweep, point_key, model, layer_path, front_key))

    def front_rows(self, sweep: str) -> list[dict[str, Any]]:
        """Every front mapping a sweep uses, with its layer, design point and its injection
        score (NULL until scored) and stored strata (``detail``)."""
        return self.query(
            "SELECT p.design, p.label AS point, sf.point_key, sf.model, sl.layer,"
            " sl.layer_index, sl.layer_path, sl.count, ft.front_size, f.*, r.sdc_rate,"
            " r.sdc_lo, r.sdc_hi, r.fit, r.injections AS faults, r.detail"
            " FROM sweep_fronts sf JOIN sweeps s ON s.sweep = sf.sweep"
            " JOIN points p ON p.point_key = sf.point_key"
            " JOIN sweep_layers sl ON sl.sweep = sf.sweep AND sl.point_key = sf.point_key"
            " AND sl.model = sf.model AND sl.layer_path = sf.layer_path"
            " JOIN front_tasks ft ON ft.front_key = sf.front_key"
            " JOIN fronts f ON f.front_key = sf.front_key"
            " LEFT JOIN resilience r ON r.row_key = f.row_key AND r.model_key = sl.model_key"
            " AND r.layer_path = sl.layer_path AND r.settings_key = s.settings_key"
            " WHERE sf.sweep = ? ORDER BY p.label, sf.model, sl.layer_index, f.rank", (sweep,))

    def put_resilience(self, row: ResilienceRow) -> None:
        """Store a score; a continued adaptive campaign replaces its row with one holding more
        faults (the stored strata only ever grow)."""
        with self._writing():
            self._conn.execute(
                "INSERT OR REPLACE INTO resilience VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (row.res_key, row.row_key, row.model_key, row.layer_path, row.settings_key,
                 row.sdc_rate, row.sdc_lo, row.sdc_hi, row.fit, row.faults, row.wall_s,
                 json.dumps(row.detail, sort_keys=True), time.time()))

    def claim(self, unit: str, kind: str, owner: str, lease_s: float) -> str:
        """Take unit ``unit`` for ``owner`` for ``lease_s`` seconds, in one IMMEDIATE transaction:
        ``"done"`` (already stored: reuse it), ``"busy"`` (another live run computes it: skip it
        for now) or ``"mine"`` (free, released, or its holder's lease ran out: compute it)."""
        with self._writing():
            self._conn.execute("BEGIN IMMEDIATE")
            # a stored map task is final; a stored resilience score may still be continued
            # (adaptive campaigns), so the caller judges it after winning the claim
            table = {"map": "tasks WHERE task_key", "front": "front_tasks WHERE front_key"}
            if kind in table and self._conn.execute(
                    f"SELECT 1 FROM {table[kind]} = ?", (unit,)).fetchone():
                return "done"
            now = time.time()
            held = self._conn.execute("SELECT owner, expires FROM claims WHERE unit = ?",
                                      (unit,)).fetchone()
            if held and held[0] != owner and held[1] > now and owner_alive(held[0]):
                return "busy"
            self._conn.execute("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
                               (unit, owner, now + lease_s))
            return "mine"

    def renew(self, units: Iterable[str], owner: str, lease_s: float) -> None:
        """Extend ``owner``'s claims on ``units`` (a live run keeps what it is computing)."""
        with self._writing():
            self._conn.executemany("UPDATE claims SET expires = ? WHERE unit = ? AND owner = ?",
                                   [(time.time() + lease_s, u, owner) for u in units])

    def release(self, unit: str, owner: str) -> None:
        with self._writing():
            self._conn.execute("DELETE FROM claims WHERE unit = ? AND owner = ?", (unit, owner))

    def put_failure(self, unit: str, sweep: str, kind: str, label: str, reason: str) -> None:
        """Mark a unit of work that failed (a crashed or hung binary, a lost worker) with its
        reason; nothing stored is touched, and a rerun computes it again."""
        with self._writing():
            self._conn.execute(
                "INSERT INTO failures VALUES (?, ?, ?, ?, ?, 1, ?) ON CONFLICT(unit) DO UPDATE"
                " SET reason = excluded.reason, attempts = attempts + 1,"
                " updated = excluded.updated", (unit, sweep, kind, label, reason, time.time()))

    def clear_failure(self, unit: str) -> None:
        with self._writing():
            self._conn.execute("DELETE FROM failures WHERE unit = ?", (unit,))

    def failures(self, sweep: str | None = None) -> list[dict[str, Any]]:
        where, params = ("WHERE sweep = ?", (sweep,)) if sweep else ("", ())
        return self.query(f"SELECT * FROM failures {where} ORDER BY label", params)

    # ------------------------------------------------------------------------------- reading
    def done_tasks(self, keys: Iterable[str]) -> set[str]:
        keys = list(keys)
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(k for (k,) in self._conn.execute(
                f"SELECT task_key FROM tasks WHERE task_key IN ({marks})", chunk))
        return found

    def has_resilience(self, res_key: str) -> bool:
        return self._conn.execute("SELECT 1 FROM resilience WHERE res_key = ?",
                                  (res_key,)).fetchone() is not None

    def resilience_detail(self, res_key: str) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT detail FROM resilience WHERE res_key = ?",
                                 (res_key,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def resilience_details(self, sweep: str) -> dict[tuple[str, str, str], dict[str, Any]]:
        """(model, mapping row key, layer path) -> stored detail of every score a sweep uses."""
        rows = self._conn.execute(
            "SELECT DISTINCT sl.model, r.row_key, r.layer_path, r.detail FROM resilience r"
            " JOIN sweeps s ON s.settings_key = r.settings_key"
            " JOIN sweep_layers sl ON sl.sweep = s.sweep AND sl.model_key = r.model_key"
            " AND sl.layer_path = r.layer_path WHERE s.sweep = ?", (sweep,))
        return {(m, k, p): json.loads(d) for m, k, p, d in rows if d}

    def network_round(self, key: str) -> dict[str, list[int]] | None:
        """The per-stratum targets (res_key -> counts) of a network campaign's latest round."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?",
                                 (f"network_round:{key}",)).fetchone()
        return json.loads(row[0]) if row else None

    def put_network_round(self, key: str, targets: dict[str, list[int]]) -> None:
        """Record a round before its tasks go out, so a killed sweep finishes that very round on
        resume (the next allocation then sees the same counts as an uninterrupted run)."""
        with self._writing():
            self._conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                               (f"network_round:{key}", json.dumps(targets)))

    def task_mappings(self, task_key: str) -> list[dict[str, Any]]:
        return self.query("SELECT * FROM mappings WHERE task_key = ? ORDER BY rank", (task_key,))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only query (SQLite's query_only guard: a ``--query`` cannot change or delete
        stored results); a bad query is an InputError naming ``--query``."""
        if not self.readonly:
            self._conn.execute("PRAGMA query_only = ON")
        try:
            cur = self._conn.execute(sql, params)
            cols = [d[0] for d in cur.description or ()]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        except (sqlite3.Error, sqlite3.Warning) as exc:
            why = ("only reads (SELECT) are allowed" if "authoriz" in str(exc) else str(exc))
            raise InputError(f"bad query: {why}", field="--query") from None
        finally:
            if not self.readonly:
                self._conn.execute("PRAGMA query_only = OFF")

    def results(self, sweep: str | None = None) -> list[dict[str, Any]]:
        """Every (design point, model, layer, mapping) row, in a stable order."""
        where, params = ("WHERE sweep = ?", (sweep,)) if sweep else ("", ())
        return self._with_point_facts(self.query(
            f"SELECT * FROM results {where} ORDER BY sweep, point, model, layer_index, rank",
            params))

    def network(self, sweep: str | None = None) -> list[dict[str, Any]]:
        """Per sweep x design point x model: network totals, with the point's area and node."""
        where, params = ("WHERE sweep = ?", (sweep,)) if sweep else ("", ())
        return self._with_point_facts(self.query(
            f"SELECT * FROM network {where} ORDER BY sweep, point, model", params))

    def _with_point_facts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Add ``technology`` and ``area_mm2`` of each row's design point (from its stored arch)."""
        facts = {r["point_key"]: point_facts(json.loads(r["arch"]))
                 for r in self.query("SELECT point_key, arch FROM points")}
        return [{**r, **facts.get(r["point_key"], {})} for r in rows]

    def timeloop_checks(self, sweep: str) -> list[dict[str, Any]]:
        """The real-Timeloop verdicts on this sweep's kept mappings (backend timeloop-check)."""
        return self.query(
            "SELECT DISTINCT c.*, r.design, r.point, r.layer, r.rank, r.energy_pJ AS dse_energy_pJ,"
            " r.cycles AS dse_cycles FROM timeloop_checks c JOIN results r"
            " ON r.row_key = c.row_key WHERE r.sweep = ? ORDER BY r.point, r.layer, r.rank",
            (sweep,))

    def sweeps(self) -> list[str]:
        return [r["sweep"] for r in self.query("SELECT sweep FROM sweeps ORDER BY updated DESC")]


def point_facts(arch: dict[str, Any]) -> dict[str, Any]:
    """Technology node and on-chip area (mm2) of a stored arch (``to_plain(Arch)``).

    Area = every non-dummy level's per-instance area x instances + the MACs'; DRAM is off chip
    (area 0 in the tables). None when no component has an area.
    """
    parts = [(lvl.get("area_um2"), lvl.get("instances", 1)) for lvl in arch.get("levels", [])
             if not lvl.get("dummy")]
    compute = arch.get("compute", {})
    parts.append((compute.get("area_um2"), compute.get("instances", 1)))
    known = [a * n for a, n in parts if a is not None]
    return {"technology": arch.get("technology"),
            "area_mm2": sum(known) * 1e-6 if known else None}


def _renew_views(conn: sqlite3.Connection) -> None:
    """Views hold no data: a store written by an older dse gets today's (its ``results`` view
    named the fault count ``injections``, which ``dse inject`` uses for fault x image pairs)."""
    found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'view' AND name = "
                         "'results'").fetchone()
    if found and "AS faults" not in found[0]:
        conn.execute("DROP VIEW IF EXISTS network")
        conn.execute("DROP VIEW IF EXISTS results")


def _open(path: Path) -> sqlite3.Connection:
    """Open (or create) a store; anything that is not a dse store is refused, never rewritten."""
    existed = path.exists() and path.stat().st_size > 0
    if existed:
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise InputError("not a dse sweep database (not SQLite); refusing to touch it",
                                 file=str(path))
    try:
        conn = sqlite3.connect(path, timeout=60.0, isolation_level="DEFERRED")
        if existed:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if tables and "meta" not in tables:
                conn.close()
                raise InputError("an SQLite file that is not a dse sweep database; refusing to"
                                 " touch it", file=str(path))
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                conn.close()
                raise InputError(f"database is corrupt ({check}); refusing to touch it",
                                 file=str(path))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with conn:
            _renew_views(conn)
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
    except sqlite3.DatabaseError as exc:
        raise InputError(f"database is corrupt or unreadable ({exc}); refusing to touch it",
                         file=str(path)) from None
    return conn


def new_owner() -> str:
    """A claim owner: ``host:pid:tag`` (the tag tells two runs in one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_alive(owner: str) -> bool:
    """False when ``owner`` is a run on this host whose process is gone (killed): its claims are
    taken over at once instead of after the lease. Runs on other hosts count as alive until their
    lease runs out."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What a read-only connection may do: read tables and views, call functions, recurse (CTEs).
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                 sqlite3.SQLITE_RECURSIVE}


def _read_only_authorizer(action: int, *_: Any) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


def _open_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing store for reading only: the file is opened read-only by SQLite (no
    journal, no schema, no WAL switch), and an authorizer refuses every statement that is not a
    read (ATTACH, PRAGMA, writes), so ``dse results`` never creates or changes a file."""
    if not path.is_file():
        raise InputError("no such sweep database", file=str(path))
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head:
        raise InputError("empty file, not a dse sweep database", file=str(path))
    if head != b"SQLite format 3\x00":
        raise InputError("not a dse sweep database (not SQLite)", file=str(path))
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise InputError(f"database is corrupt or unreadable ({exc})", file=str(path)) from None
    if not {"meta", "results", "network", "sweeps"} <= tables:
        conn.close()
        raise InputError("an SQLite file that is not a dse sweep database", file=str(path))
    conn.set_authorizer(_read_only_authorizer)
    return conn


def open_existing(path: str | Path) -> Store:
    """Open a store that must already exist, read-only (for ``dse results``)."""
    return Store(path, readonly=True)


# ------------------------------------------------------------------------------------- export

def export_csv(rows: Sequence[dict[str, Any]], out: str | Path) -> None:
    cols = list(rows[0]) if rows else []
    with validate.atomic_open(out, "w", field="--csv", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True


def export_parquet(rows: Sequence[dict[str, Any]], out: str | Path) -> None:
    if not parquet_available():
        raise InputError("Parquet export needs pyarrow (pip install 'dse[parquet]'); use --csv",
                         field="--parquet")
    import pandas as pd

    pd.DataFrame(list(rows)).to_parquet(out, index=False)
