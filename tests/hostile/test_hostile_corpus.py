"""Every hostile case: exit status 2, one line on stderr, no traceback, nothing written lost.

Cases run in-process through :func:`dse.cli.main` (a subprocess costs ~2 s each); the fixture
furnishes each case's folder with a real sweep store, a regular file, a directory and whatever
files the case brings, and records the bytes of every file before the run.
"""

from __future__ import annotations

import io
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _cases import CASES, evil_pickle

from dse.cli import main
from dse.sweep.store import Store


def _store(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with Store(path) as store:
        store.begin_sweep("s1", {"name": "s1"}, "k", [], [])


def _special(kind: str, d: Path) -> bytes | None:
    """File contents that are not plain text: built here rather than stored in the repo."""
    if kind == "EVIL":
        return evil_pickle(d)
    if kind.startswith("NPZ_"):
        buf = io.BytesIO()
        n_labels = 5 if kind == "NPZ_MISMATCH" else 10
        np.savez(buf, images=np.zeros((10, 1, 8, 8), np.float32),
                 labels=np.zeros(n_labels, np.int64))
        return buf.getvalue()
    if kind == "DIGITS_WEIGHTS":
        from dse.problems import zoo

        buf = io.BytesIO()
        torch.save(zoo.get_model("digits_cnn").state_dict(), buf)
        return buf.getvalue()
    if kind == "OTHER_DB":
        conn = sqlite3.connect(d / ".other.tmp.sqlite")
        conn.execute("CREATE TABLE t (a)")
        conn.commit()
        conn.close()
        data = (d / ".other.tmp.sqlite").read_bytes()
        (d / ".other.tmp.sqlite").unlink()
        return data
    if kind == "TRUNCATED":
        return (d / "store" / "sweep.sqlite").read_bytes()[:4096]
    return None


def furnish(d: Path, files: dict[str, str | bytes]) -> None:
    _store(d / "store" / "sweep.sqlite")
    (d / "file.txt").write_text("precious\n")
    (d / "adir").mkdir()
    (d / "adir" / "keep.txt").write_text("keep\n")
    for rel, content in files.items():
        path = d / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            special = _special(content, d)
            content = special if special is not None else content.replace("{d}", str(d)).encode()
        path.write_bytes(content)


def snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("argv,files", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_exit_2_and_nothing_lost(argv, files, tmp_path, monkeypatch,
                                                           capsys):
    d = tmp_path
    furnish(d, files)
    before = snapshot(d)
    monkeypatch.chdir(d)
    with warnings.catch_warnings(record=True) as shown:  # a user would see these on stderr
        warnings.simplefilter("default")  # what `python -m dse` shows
        rc = main([a.replace("{d}", str(d)) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and "\r" not in line]
    assert rc == 2, f"exit {rc}; stderr: {err[-2000:]}"
    assert "Traceback" not in err
    assert len(lines) == 1 and not shown, (err, [str(w.message)[:200] for w in shown])
    after = snapshot(d)
    for rel, data in before.items():
        assert after.get(rel) == data, f"{rel} changed or vanished"
    leftovers = [p for p in after if p not in before and (".tmp" in p or p.endswith(".db"))]
    assert not leftovers, leftovers
    assert not (d / "pwned").exists(), "a pickle was executed"


def test_corpus_has_at_least_120_distinct_cases():
    ids = [c[0] for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 120
