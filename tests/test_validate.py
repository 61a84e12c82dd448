"""The one validation helper: numbers, names, output paths, atomic writes, worker caps, and the
code version that keys stored results."""

from __future__ import annotations

import math
import os

import pytest

import dse
from dse import validate
from dse.errors import InputError
from dse.sweep import hashing
from dse.workers import cap_workers, usable_cores


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "3", None])
def test_number_refuses_nan_inf_bool_and_text(value):
    with pytest.raises(InputError, match="x.field"):
        validate.number(value, "x.field")


def test_range_checks_name_the_bound():
    assert validate.positive(3, "f", integer=True) == 3
    with pytest.raises(InputError, match=r"must be > 0, got 0"):
        validate.positive(0, "f")
    with pytest.raises(InputError, match=r"in \(0, 1\)"):
        validate.fraction(1.0, "f")
    assert validate.non_negative(0, "f") == 0


def test_resolve_suggests_close_names():
    with pytest.raises(InputError, match="did you mean Weights"):
        validate.resolve("Weightz", ["Weights", "Inputs", "Outputs"], "keep", what="dataspace")


def test_output_file_refuses_directories_and_paths_under_files(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a directory"):
        validate.output_file(tmp_path, "--out")
    with pytest.raises(InputError, match="not a directory"):
        validate.output_file(tmp_path / "f" / "x", "--out")
    assert validate.output_file(tmp_path / "new" / "deeper" / "x.csv", "--out")
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_atomic_write_leaves_old_file_and_no_temporary_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), validate.atomic_open(target) as fh:
        fh.write("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    validate.write_text(target, "new")
    assert target.read_text() == "new"


def test_code_version_does_not_depend_on_dse_file(monkeypatch):
    """A ``dse/`` folder without ``__init__.py`` makes ``dse`` a namespace package
    (``__file__`` None, no ``__version__``): the key must come out the same."""
    expected = hashing.code_version()
    monkeypatch.setattr(dse, "__file__", None)
    monkeypatch.delattr(dse, "__version__")
    assert hashing.code_version.__wrapped__() == expected


def test_worker_count_is_capped_by_cores_and_work_with_a_note():
    cores = usable_cores()
    n, note = cap_workers(1000)
    assert n == cores and f"--workers 1000 lowered to {cores}" in note
    assert cap_workers(1) == (1, None)
    n, note = cap_workers(cores + 5, work=1)
    assert n == 1 and "1 units of work" in note
