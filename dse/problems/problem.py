"""Core workload types shared by every stage: Problem, DataSpace, Layer, Workload.

A :class:`Problem` is Timeloop's view of one layer: named dimensions with sizes, named integer
coefficients (strides, dilations), and dataspaces whose ranks are affine projections of the
dimensions. One general projection form covers dense conv, grouped / depthwise conv (dimension ``G``)
and matmul, so the model, mapper and fault-site analysis never special-case an operator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# One term of a rank's affine expression: (dimension, coefficient name or None for 1).
Term = tuple[str, "str | None"]
# One rank (tensor axis): the sum of its terms.
Rank = tuple[Term, ...]

CONV_DIMS = ("C", "M", "R", "S", "N", "P", "Q", "G")
CONV_COEFFICIENTS = ("Wstride", "Hstride", "Wdilation", "Hdilation")


@dataclass(frozen=True)
class DataSpace:
    """A tensor of the layer: its ranks as projections of the problem dimensions.

    ``read_write`` marks the output (partial sums are read back and updated).
    """

    name: str
    projection: tuple[Rank, ...]
    read_write: bool = False

    @property
    def dims(self) -> frozenset[str]:
        """Dimensions this dataspace depends on (a loop over any other dim reuses it)."""
        return frozenset(d for rank in self.projection for d, _ in rank)


@dataclass
class Problem:
    """One layer as Timeloop sees it.

    ``instance`` maps every dimension to its size (1 for unused ones); ``coefficients`` holds the
    values of the coefficient names used in projections. ``dimensions`` keeps Timeloop's dimension
    order, which fixes the order of factors in written mappings.
    """

    shape_name: str
    dimensions: tuple[str, ...]
    instance: dict[str, int]
    coefficients: dict[str, int]
    dataspaces: tuple[DataSpace, ...]

    @property
    def macs(self) -> int:
        return math.prod(self.instance[d] for d in self.dimensions)

    def dataspace(self, name: str) -> DataSpace:
        for ds in self.dataspaces:
            if ds.name == name:
                return ds
        raise KeyError(name)

    @property
    def output(self) -> DataSpace:
        """The read-write dataspace (Outputs)."""
        return next(ds for ds in self.dataspaces if ds.read_write)

    def coefficient(self, name: str | None) -> int:
        return 1 if name is None else self.coefficients[name]

    def rank_extent(self, rank: Rank, sizes: dict[str, int]) -> int:
        """Extent of one rank when each dim d ranges over ``sizes[d]`` values (bounding box)."""
        return 1 + sum(self.coefficient(c) * (sizes.get(d, 1) - 1) for d, c in rank)

    def tile_size(self, dataspace: str, sizes: dict[str, int]) -> int:
        """Number of elements of ``dataspace`` touched when dims range over ``sizes`` values."""
        ds = self.dataspace(dataspace)
        return math.prod(self.rank_extent(rank, sizes) for rank in ds.projection)

    def tensor_size(self, dataspace: str) -> int:
        return self.tile_size(dataspace, self.instance)


def conv_problem(
    *,
    N: int = 1,
    C: int,
    M: int,
    R: int = 1,
    S: int = 1,
    P: int = 1,
    Q: int = 1,
    G: int = 1,
    Wstride: int = 1,
    Hstride: int = 1,
    Wdilation: int = 1,
    Hdilation: int = 1,
) -> Problem:
    """The conv-with-groups shape of the reference cases (``conv2D_grouped``).

    ``C`` and ``M`` are per group; depthwise conv is ``G = channels, C = M = 1``. Matmul / linear
    layers are the same shape with ``R = S = Q = 1`` (``C`` = reduction, ``M`` = outputs,
    ``P`` = rows). Naming follows the reference files: R, P pair with W*; S, Q with H*.
    """
    weights = ((("C", None),), (("M", None),), (("R", None),), (("S", None),), (("G", None),))
    inputs = (
        (("N", None),),
        (("C", None),),
        (("R", "Wdilation"), ("P", "Wstride")),
        (("S", "Hdilation"), ("Q", "Hstride")),
        (("G", None),),
    )
    outputs = ((("N", None),), (("M", None),), (("Q", None),), (("P", None),), (("G", None),))
    sizes = dict(C=C, M=M, R=R, S=S, N=N, P=P, Q=Q, G=G)
    for name, value in sizes.items():
        if int(value) < 1:
            raise ValueError(f"dimension {name} must be >= 1, got {value}")
    return Problem(
        shape_name="conv2D_grouped",
        dimensions=CONV_DIMS,
        instance={k: int(v) for k, v in sizes.items()},
        coefficients=dict(
            Wstride=int(Wstride), Hstride=int(Hstride),
            Wdilation=int(Wdilation), Hdilation=int(Hdilation),
        ),
        dataspaces=(
            DataSpace("Weights", weights),
            DataSpace("Inputs", inputs),
            DataSpace("Outputs", outputs, read_write=True),
        ),
    )


@dataclass
class Layer:
    """One unique MAC layer of a model; ``count`` identical occurrences were folded into it."""

    name: str
    module_path: str
    op: str
    problem: Problem
    count: int = 1
    # module path of every occurrence, first one first (what a per-layer comparison unfolds)
    paths: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """MACs of all occurrences together."""
        return self.problem.macs * self.count


@dataclass
class NonMacOp:
    """Work that is not mapped onto the MAC array (pooling, norms, activations, adds).

    ``name`` is where the op first occurred; ``elements`` sums the output elements of all ``count``
    occurrences (a size for the work, since these ops cost per element, not per MAC).
    """

    name: str
    op: str
    count: int = 1
    elements: int = 0


@dataclass
class Workload:
    """A profiled model: its unique MAC layers in first-occurrence order, plus the rest."""

    model: str
    input_shape: tuple[int, ...]
    layers: list[Layer]
    non_mac: list[NonMacOp] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # how the problems were derived, for users

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)
