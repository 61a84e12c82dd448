"""The SQLite store: idempotent writes, the network view's arithmetic, refusing corrupt files."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from dse.errors import InputError
from dse.sweep.store import (
    MappingRow,
    ResilienceRow,
    Store,
    export_csv,
    export_parquet,
    parquet_available,
)


def _row(key: str, rank: int, energy: float, cycles: int) -> MappingRow:
    return MappingRow(row_key=key, rank=rank, roles="best" if rank == 0 else "pareto",
                      energy_pJ=energy, cycles=cycles, utilization=0.5,
                      edp=energy * 1e-12 * cycles, macs=1000,
                      components={"mac": energy / 4, "DRAM": 3 * energy / 4}, mapping=f"m{key}")


def _fill(store: Store) -> None:
    point = dict(point_key="P", design="d", label="d", params="{}", arch="{}")
    layers = [
        dict(point_key="P", model="net", model_key="MK", layer_index=0, layer="conv1",
             layer_path="conv1", count=1, task_key="T1"),
        dict(point_key="P", model="net", model_key="MK", layer_index=1, layer="conv2",
             layer_path="layers.0.conv1", count=3, task_key="T2"),
    ]
    store.begin_sweep("s", {"name": "s"}, "SK", layers, [point])
    store.put_task("T1", "P", {}, {}, [_row("a", 0, 100.0, 10), _row("b", 1, 80.0, 20)],
                   evaluated=5, valid=4, wall_s=0.1)
    store.put_task("T2", "P", {}, {}, [_row("c", 0, 50.0, 40)], evaluated=5, valid=4, wall_s=0.1)


def test_rewriting_a_finished_task_adds_no_duplicate_rows(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        _fill(store)
        store.put_task("T1", "P", {}, {}, [_row("a", 0, 999.0, 1)], evaluated=1, valid=1,
                       wall_s=0)
        rows = store.results("s")
        assert [(r["layer"], r["rank"]) for r in rows] == [("conv1", 0), ("conv1", 1), ("conv2", 0)]
        assert rows[0]["energy_pJ"] == 100.0  # the first stored result is kept, not overwritten
        assert store.done_tasks(["T1", "T2", "T3"]) == {"T1", "T2"}


def test_network_view_multiplies_layers_by_repeat_count_and_weights_sdc_by_time(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        for row_key, rate in (("a", 0.10), ("c", 0.40)):
            store.put_resilience(ResilienceRow(
                res_key=row_key + "R", row_key=row_key, model_key="MK",
                layer_path="conv1" if row_key == "a" else "layers.0.conv1", settings_key="SK",
                sdc_rate=rate, sdc_lo=rate - 0.05, sdc_hi=rate + 0.05, fit=rate * 10,
                faults=100, wall_s=0.0, detail={}))
        (net,) = store.network("s")
    energy = 100.0 * 1 + 50.0 * 3
    cycles = 10 * 1 + 40 * 3
    assert net["energy_pJ"] == pytest.approx(energy)
    assert net["cycles"] == cycles
    assert net["edp"] == pytest.approx(energy * 1e-12 * cycles)
    assert net["macs"] == 4000
    assert net["gflops_1ghz"] == pytest.approx(2 * 4000 / cycles)
    assert net["sdc_rate"] == pytest.approx((0.10 * 10 + 0.40 * 120) / cycles)
    assert net["layers_scored"] == 2


def test_resilience_of_other_fault_settings_is_kept_but_not_shown(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        store.put_resilience(ResilienceRow("x", "a", "MK", "conv1", "OTHER", 0.9, 0.8, 1.0, None,
                                           10, 0.0, {}))
        assert all(r["sdc_rate"] is None for r in store.results("s"))
        assert store.has_resilience("x")


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "sweep.sqlite"
    payload = b"these are my precious notes, not a database\n" * 50
    path.write_bytes(payload)
    with pytest.raises(InputError, match="not a dse sweep database"):
        Store(path)
    assert path.read_bytes() == payload


def test_a_damaged_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "sweep.sqlite"
    with Store(path) as store:
        _fill(store)
    data = bytearray(path.read_bytes())
    data[100:4000] = b"\xff" * 3900  # smash the header page and the schema
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sweep.sqlite"):
        Store(path)
    assert path.read_bytes() == bytes(data)


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE payroll (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="not a dse sweep database"):
        Store(path)
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [
        ("payroll",)]


def test_csv_export_round_trips_every_result_row(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        rows = store.results("s")
    export_csv(rows, tmp_path / "out.csv")
    with open(tmp_path / "out.csv") as fh:
        back = list(csv.DictReader(fh))
    assert [r["row_key"] for r in back] == [r["row_key"] for r in rows]
    assert [float(r["energy_pJ"]) for r in back] == [r["energy_pJ"] for r in rows]


def test_parquet_export_says_what_is_missing_without_pyarrow(tmp_path):
    if parquet_available():
        export_parquet([{"a": 1}], tmp_path / "x.parquet")
        assert (tmp_path / "x.parquet").stat().st_size > 0
    else:
        with pytest.raises(InputError, match="pyarrow"):
            export_parquet([{"a": 1}], tmp_path / "x.parquet")


def test_a_bad_query_is_a_user_error(tmp_path):
    with Store(tmp_path / "s.sqlite") as store, pytest.raises(InputError, match="--query"):
        store.query("SELECT nope FROM nowhere")


def test_a_query_cannot_change_stored_results(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        _fill(store)
        with pytest.raises(InputError, match="--query"):
            store.query("DELETE FROM mappings")
        assert len(store.results("s")) == 3
        store.put_task("T9", "P", {}, {}, [_row("z", 0, 1.0, 1)], evaluated=1, valid=1, wall_s=0)
        assert store.done_tasks(["T9"]) == {"T9"}  # writing still works after a refused query


def test_a_sweep_name_is_bound_to_its_config(tmp_path):
    """Reusing a name with another experiment is refused (one line, --name hint) and changes
    nothing; the same experiment run another way (executor, workers, output) keeps its name."""
    from dse.errors import InputError
    from dse.sweep.run import config_conflict

    path = tmp_path / "s.sqlite"
    old = {"name": "s", "designs": ["eyeriss_like"], "seed": 0, "workers": 2}
    with Store(path) as store:
        store.begin_sweep("s", old, "SK", [], [])
    before = path.read_bytes()
    new = {**old, "designs": ["nvdla_like"]}
    with Store(path) as store, pytest.raises(InputError, match="different designs.*--name"):
        store.begin_sweep("s", new, "SK", [], [],
                          conflict=lambda stored: config_conflict(stored, new))
    assert path.read_bytes() == before
    same = {**old, "workers": 8, "executor": "dask"}
    with Store(path) as store:
        store.begin_sweep("s", same, "SK", [], [],
                          conflict=lambda stored: config_conflict(stored, same))
        assert store.sweeps() == ["s"]


def test_a_store_written_with_the_old_view_shows_faults_not_injections(tmp_path):
    import sqlite3

    from dse.sweep.store import Store

    path = tmp_path / "old.sqlite"
    with Store(path):
        pass
    conn = sqlite3.connect(path)  # the results view as dse wrote it before: `r.injections`
    sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'results'").fetchone()[0]
    with conn:
        conn.execute("DROP VIEW network")
        conn.execute("DROP VIEW results")
        conn.execute(sql.replace("r.injections AS faults", "r.injections"))
    conn.close()
    with Store(path) as store:
        cols = [d[1] for d in store._conn.execute("PRAGMA table_info(results)")]
        assert "faults" in cols and "injections" not in cols
        assert store.network() == []  # the network view is back too
