"""The Stats type: what one evaluation of (problem, arch, mapping) reports.

It is what the builtin model returns and what the ``*.stats.txt`` parser produces from a real
Timeloop run, so the two can be compared field by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dse.frames import Framed


@dataclass
class LevelStats:
    """Scalar (word) access counts of one dataspace at one storage level, summed over instances."""

    level: str
    dataspace: str
    instances: int  # utilized instances
    reads: int = 0
    updates: int = 0
    fills: int = 0
    energy_pJ: float = 0.0


@dataclass
class Stats(Framed):
    """Totals of one evaluation; ``to_frame()``: one row per (level, dataspace) and one for the
    MACs, so the energy breakdown sums to ``energy_pJ``."""

    energy_pJ: float
    cycles: int
    utilization: float
    macs: int
    mac_energy_pJ: float = 0.0
    levels: list[LevelStats] = field(default_factory=list)
    mac_instances: int = 1

    @property
    def edp(self) -> float:
        """Energy-delay product in J·cycles (Timeloop's EDP unit)."""
        return self.energy_pJ * 1e-12 * self.cycles

    @property
    def fJ_per_mac(self) -> float:
        return self.energy_pJ * 1000.0 / self.macs if self.macs else 0.0

    def component_energy(self) -> dict[str, float]:
        """Energy per component (level name, plus the MAC under its own key ``"mac"``), in pJ."""
        out: dict[str, float] = {"mac": self.mac_energy_pJ}
        for ls in self.levels:
            out[ls.level] = out.get(ls.level, 0.0) + ls.energy_pJ
        return out

    def frame_rows(self) -> list[dict[str, Any]]:
        rows = [{"level": ls.level, "dataspace": ls.dataspace, "instances": ls.instances,
                 "reads": ls.reads, "updates": ls.updates, "fills": ls.fills,
                 "energy_pJ": ls.energy_pJ} for ls in self.levels]
        return rows + [{"level": "mac", "instances": self.mac_instances, "macs": self.macs,
                        "energy_pJ": self.mac_energy_pJ}]

    def get(self, level: str, dataspace: str) -> LevelStats:
        for ls in self.levels:
            if ls.level == level and ls.dataspace == dataspace:
                return ls
        raise KeyError((level, dataspace))
