"""Core architecture types: what an accelerator is and what each of its actions costs.

An :class:`Arch` is the flattened view Timeloop itself works on: storage levels from DRAM inward
(including timeloopfe's zero-energy ``inter_<container>_spatial`` levels, so mapping files name the
same targets as Timeloop's), then the compute level. Each level records how many instances exist
and how they are laid out (``mesh_x`` × ``mesh_y``), so the fanout between a level and the next one
inward is the ratio of their instance counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Constraints:
    """Dataflow constraints Timeloop attaches to one level (all optional).

    ``factors`` maps a dim to ``(op, value)`` with op one of ``"="``, ``"<="``, ``">="``.
    ``permutation`` lists dims outermost first (Timeloop's strings are innermost first and are
    reversed on load). Timeloop pins the listed dims at the innermost positions in that order;
    dims not listed are free and sit outside them.
    ``split`` is Timeloop's X/Y split index for spatial permutations, counted from the innermost
    end (the innermost ``split`` dims are X, the rest Y; see ``dse.arch.constraints.spatial_axes``).
    """

    temporal_factors: dict[str, tuple[str, int]] = field(default_factory=dict)
    temporal_permutation: tuple[str, ...] = ()
    spatial_factors: dict[str, tuple[str, int]] = field(default_factory=dict)
    spatial_permutation: tuple[str, ...] = ()
    spatial_split: int | None = None
    keep: tuple[str, ...] | None = None
    bypass: tuple[str, ...] | None = None
    min_utilization: float = 0.0
    max_temporal_loops: int | None = None


@dataclass
class StorageLevel:
    """One buffer level (DRAM, SRAM, register file, or a dummy spatial level).

    Sizes follow Timeloop: ``depth`` in vector entries of ``width`` bits, ``word_bits`` per element
    (Timeloop's ``datawidth``), so ``block_size = width // word_bits`` elements per access.
    ``depth=None`` means unbounded (DRAM). Bandwidths are in words per cycle; ``None`` = unlimited.
    ``energy`` is the per-action energy (pJ per *vector* access, as Accelergy reports it).
    """

    name: str
    component_class: str
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    depth: int | None = None
    width: int = 8
    word_bits: int = 8
    n_banks: int = 1
    read_bandwidth: float | None = None
    write_bandwidth: float | None = None
    multiple_buffering: float = 1.0
    technology: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)
    constraints: Constraints = field(default_factory=Constraints)
    energy: dict[str, float] = field(default_factory=dict)
    area_um2: float | None = None
    dummy: bool = False

    @property
    def block_size(self) -> int:
        return max(1, self.width // self.word_bits)

    @property
    def capacity_words(self) -> int | None:
        """Words this level can hold, or None if unbounded."""
        if self.depth is None:
            return None
        return self.depth * self.block_size


@dataclass
class ComputeLevel:
    """The MAC array: ``instances`` MAC units laid out ``mesh_x`` × ``mesh_y``."""

    name: str
    component_class: str
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    word_bits: int = 8
    technology: str | None = None
    attributes: dict[str, object] = field(default_factory=dict)
    energy: dict[str, float] = field(default_factory=dict)  # at least "compute" (pJ per MAC)
    area_um2: float | None = None


@dataclass
class Arch:
    """A whole design: ``levels`` ordered from the outermost (DRAM) to the innermost buffer."""

    name: str
    levels: list[StorageLevel]
    compute: ComputeLevel
    technology: str | None = None
    # which estimator produced the energies (builtin / accelergy / ERT file)
    energy_source: str = "builtin"

    def level(self, name: str) -> StorageLevel:
        for lvl in self.levels:
            if lvl.name == name:
                return lvl
        raise KeyError(name)

    def level_index(self, name: str) -> int:
        for i, lvl in enumerate(self.levels):
            if lvl.name == name:
                return i
        raise KeyError(name)

    def fanout(self, index: int) -> int:
        """Number of children each instance of ``levels[index]`` feeds (next level or MACs)."""
        child = self.levels[index + 1] if index + 1 < len(self.levels) else self.compute
        return child.instances // self.levels[index].instances

    def fanout_xy(self, index: int) -> tuple[int, int]:
        """Fanout split into X and Y, from the mesh shapes of the level and its child."""
        lvl = self.levels[index]
        child = self.levels[index + 1] if index + 1 < len(self.levels) else self.compute
        return child.mesh_x // lvl.mesh_x, child.mesh_y // lvl.mesh_y
