"""pandas DataFrame forms of dse's result types: one builder and one vocabulary of column names.

Every result type the Python API returns has ``.to_frame()`` (through :class:`Framed`), and every
frame column is a name of :data:`COLUMNS` (or a per-class outcome name, see :data:`CLASS_SUFFIXES`),
so a column means the same thing in every frame, and its unit is in its name (``energy_pJ``,
``edp_J_cycles``, ``sdc_FIT``, ``exposed_Mbit``); dimensionless columns (rates, shares, counts)
say what they count. ``frame.attrs["units"]`` maps each column to its definition.

Neutral ground (imports nothing of dse) so every layer's results share it; pandas is imported
only when a frame is built, so the command line does not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# column -> definition (with its unit). Labels (text columns) have definitions too.
COLUMNS: dict[str, str] = {
    # labels
    "design": "design name (designs/)", "point": "design point label (design + variant)",
    "model": "model name", "layer": "layer name", "layer_path": "module path of the layer",
    "level": "storage level of the design", "dataspace": "Weights, Inputs or Outputs",
    "site": "fault site class (level:dataspace)", "bits": "bit positions lo-hi of the word",
    "kept": "why the mapping was kept: best, pareto or topk", "group": "what the row totals",
    "key": "the layer, bit or experiment group of the row", "fault": "fault index in the list",
    "sweep": "sweep name", "technology": "technology node",
    "optimizer": "training optimizer", "mitigation": "training-fault mitigation",
    # efficiency
    "energy_pJ": "energy in picojoules", "mac_energy_pJ": "energy of the MACs in picojoules",
    "cycles": "clock cycles", "edp_J_cycles": "energy-delay product in joules x cycles",
    "utilization": "fraction of MAC instances busy per cycle (0..1)",
    "macs": "multiply-accumulates", "instances": "utilized instances of the level",
    "reads": "scalar reads (words)", "updates": "scalar updates (words)",
    "fills": "scalar fills (words)", "rank": "0 = the mapper's best mapping",
    "count": "times the layer occurs in the network", "layers": "unique layers",
    "layer_index": "position of the unique layer in the network",
    "layer_instances": "layers counted with repeats", "layers_scored": "layers with an SDC figure",
    "point_key": "content hash of the design point", "row_key": "content hash of the mapping row",
    "gops_at_1GHz": "integer giga-operations per second at 1 GHz (2 per MAC)",
    "area_um2": "area in square micrometres", "wall_s": "wall time in seconds",
    # resilience
    "faults": "faults run (the sampling unit)",
    "fault_image_pairs": "(fault, image) pairs run: faults x images each fault was run on",
    "sdc_per_fault": "P(top-1 changes | one raw fault in the exposed storage), 0..1",
    "sdc_per_fault_lo": "lower bound of sdc_per_fault's interval",
    "sdc_per_fault_hi": "upper bound of sdc_per_fault's interval",
    "due_per_fault": "P(INF/NaN output | one raw fault), 0..1",
    "sdc_FIT": "SDC failures per 1e9 device-hours (raw FIT/Mbit x exposed Mbit x SDC per fault)",
    "sdc_FIT_lo": "lower bound of sdc_FIT's interval", "sdc_FIT_hi": "upper bound of sdc_FIT's interval",
    "due_FIT": "INF/NaN failures per 1e9 device-hours",
    "sdc_per_inference": "P(top-1 changes during one inference) at the sweep's clock and raw FIT",
    "sdc_per_inference_hi": "upper bound of sdc_per_inference's interval",
    "exposed_Mbit": "bits (in Mbit) that a raw fault can strike",
    "fit_per_Mbit": "raw FIT per Mbit of storage assumed", "confidence": "interval level, 0..1",
    "exposure_share": "share of the exposed bits x residency in this site, 0..1",
    "outputs_per_fault": "mean layer outputs one fault corrupts",
    "live_fraction": "share of (fault, image) pairs whose layer output changed, 0..1",
    "relative_half_width": "interval half-width over the estimate", "resolved": "precision met",
    "experiments": "training runs with one fault each (the sampling unit)",
}

# Per-class outcome columns: ``<class><suffix>`` (the class names come from the outcome spec).
CLASS_SUFFIXES: dict[str, str] = {
    "_pairs": "(fault, image) pairs whose outcome is the class",
    "_per_pair": "share of (fault, image) pairs in the class, 0..1",
    "_per_pair_lo": "lower bound (fault as sampling unit)",
    "_per_pair_hi": "upper bound (fault as sampling unit)",
    "_experiments": "experiments whose outcome is the class",
    "_per_experiment": "share of experiments in the class, 0..1",
    "_per_experiment_lo": "lower bound (Wilson, experiment as unit)",
    "_per_experiment_hi": "upper bound (Wilson, experiment as unit)",
}

# Stored / internal names -> frame names (one meaning per name across commands and the store).
RENAME: dict[str, str] = {
    "edp": "edp_J_cycles", "sdc_rate": "sdc_per_fault", "sdc_lo": "sdc_per_fault_lo",
    "sdc_hi": "sdc_per_fault_hi", "sdc1_rate": "sdc_per_fault", "fit": "sdc_FIT",
    "fit_lo": "sdc_FIT_lo", "fit_hi": "sdc_FIT_hi", "due_rate": "due_per_fault",
    "due_fit": "due_FIT", "gflops_1ghz": "gops_at_1GHz", "exposed_mbit": "exposed_Mbit",
    "injections": "faults", "n_faults": "faults", "fit_per_mbit": "fit_per_Mbit",
    "mean_footprint": "outputs_per_fault", "n": "faults",
}


def definition(column: str) -> str:
    """What ``column`` means (KeyError for a name outside the vocabulary)."""
    if column in COLUMNS:
        return COLUMNS[column]
    for suffix in sorted(CLASS_SUFFIXES, key=len, reverse=True):
        if column.endswith(suffix) and len(column) > len(suffix):
            return f"{column[:-len(suffix)]}: {CLASS_SUFFIXES[suffix]}"
    raise KeyError(f"frame column {column!r} is not in dse.frames.COLUMNS")


def renamed(row: Mapping[str, Any], keep: Iterable[str] | None = None) -> dict[str, Any]:
    """``row`` under frame names; scalar values only (nested lists / dicts / mapping text stay
    in the result object), and only the vocabulary's columns (or ``keep``)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = RENAME.get(key, key)
        if isinstance(value, (list, dict, tuple)) or (keep is not None and name not in keep):
            continue
        try:
            definition(name)
        except KeyError:
            continue
        out.setdefault(name, value)
    return out


def frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Any:
    """A DataFrame of ``rows`` in ``columns`` order (default: first-seen order), every column
    checked against the vocabulary and defined in ``attrs["units"]``."""
    import pandas as pd

    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    units = {c: definition(c) for c in columns}
    df = pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=list(columns))
    df.attrs["units"] = units
    return df


class Framed:
    """Mixin: ``to_frame()`` from the result's :meth:`frame_rows` (rows under frame names)."""

    def frame_rows(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def to_frame(self) -> Any:
        """This result as a pandas DataFrame; columns defined in ``df.attrs["units"]``."""
        return frame(self.frame_rows())
