"""One fault description for every campaign kind, and its one CSV form.

A :class:`Fault` says

- **where** (:class:`Where`): model, layer path, tensor role (``weight`` / ``bias`` / ``input`` /
  ``output`` / ``gradient`` / ``state``) and element index (without the batch dimension for
  per-image tensors);
- **what** (:class:`What`): the fault kind on the stored word (:data:`KINDS`: ``bitflip`` of the
  named bits, ``stuck0`` / ``stuck1``, ``random`` value, ``zero``, ``copy`` of another element,
  a given ``value``) applied to ``run`` contiguous
  elements (C order, from the index);
- in which number **format** the tensor is stored (:mod:`dse.resilience.formats`);
- **when** (:class:`When`): ``permanent`` (for the whole campaign), one ``inference`` (of image
  ``at``), one training ``step`` (``at``) or one ``time_step`` (``at``) of a spiking network.

Adding a fault kind means adding one :class:`Kind` to :data:`KINDS` here (docs/resilience.md).
Which kinds, roles and times a campaign runs is its own business: the inference engines take
weight / bias / output faults, permanent or for one inference.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dse.errors import InputError
from dse.resilience import formats
from dse.resilience.formats import NumberFormat, number_format

ROLES = ("weight", "bias", "input", "output", "gradient", "state")
TIMES = ("permanent", "inference", "step", "time_step")


@dataclass(frozen=True)
class Kind:
    """A fault kind: what it does to a stored word. ``apply(words, mask, what, width)`` gets the
    words (int64 in [0, 2^width)), the mask of the fault's bits, the :class:`What` and the word
    width, and returns the faulty words (in the same range); ``uses_bits`` says whether the kind
    needs bit positions; ``word_from`` where
    its ``word`` comes from: ``draw`` (uniform, when the fault is sampled), ``tensor`` (another
    element of the struck tensor, read by the engine when the fault strikes), ``given`` (the
    user's value), None (no word)."""

    name: str
    uses_bits: bool
    doc: str
    apply: Callable[[torch.Tensor, int, What, int], torch.Tensor]
    word_from: str | None = None


def _write_word(w: torch.Tensor, _mask: int, what: What, _width: int) -> torch.Tensor:
    return torch.full_like(w, what.word)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("bitflip", True, "flip each named bit", lambda w, m, _what, _n: w ^ m),
    Kind("stuck0", True, "each named bit stuck at 0", lambda w, m, _what, _n: w & ~m),
    Kind("stuck1", True, "each named bit stuck at 1", lambda w, m, _what, _n: w | m),
    Kind("random", False, "the word replaced by the fault's random word", _write_word, "draw"),
    Kind("zero", False, "the word set to all zeros",
         lambda w, _m, _what, _n: torch.zeros_like(w)),
    Kind("copy", False, "the word replaced by the word of another element of the same tensor "
         "(a valid value from elsewhere)", _write_word, "tensor"),
    Kind("value", False, "the word replaced by a given value's word (e.g. a huge number)",
         _write_word, "given"),
)}


def _choice(value: str, allowed: Sequence[str], name: str) -> str:
    if value not in allowed:
        raise InputError(f"unknown {name} {value!r}; expected one of {list(allowed)}", field=name)
    return value


@dataclass(frozen=True)
class Where:
    """Which tensor element: ``index`` into the layer's ``role`` tensor (per-image tensors --
    input, output, state -- without the batch dimension)."""

    layer: str
    index: tuple[int, ...]
    role: str = "weight"
    model: str = ""

    def __post_init__(self) -> None:
        _choice(self.role, ROLES, "role")
        object.__setattr__(self, "index", tuple(int(i) for i in self.index))


@dataclass(frozen=True)
class What:
    """What happens to the word(s): ``kind`` on ``bits`` (for bit kinds), over ``run``
    contiguous elements; ``word`` is the stored word a ``random`` fault writes (drawn when the
    fault is made, so the fault replays exactly)."""

    kind: str = "bitflip"
    bits: tuple[int, ...] = ()
    run: int = 1
    word: int | None = None

    def __post_init__(self) -> None:
        kind = KINDS[_choice(self.kind, tuple(KINDS), "fault")]
        object.__setattr__(self, "bits", tuple(int(b) for b in self.bits))
        if kind.uses_bits and not self.bits:
            raise InputError(f"a {self.kind} fault needs at least one bit", field="bit")
        if not kind.uses_bits and self.bits:
            raise InputError(f"a {self.kind} fault takes no bits", field="bit")
        if len(set(self.bits)) != len(self.bits):
            raise InputError(f"repeated bit in {list(self.bits)}", field="bit")
        if self.run < 1:
            raise InputError(f"run must be >= 1, got {self.run}", field="run")
        if (kind.word_from is not None) != (self.word is not None):
            raise InputError(f"a {self.kind} fault {'needs' if kind.word_from else 'takes no'} "
                             "word", field="word")


@dataclass(frozen=True)
class When:
    """When the fault is present: ``permanent``, or at one ``inference`` / ``step`` /
    ``time_step`` numbered ``at``."""

    kind: str = "permanent"
    at: int | None = None

    def __post_init__(self) -> None:
        _choice(self.kind, TIMES, "when")
        if (self.kind == "permanent") != (self.at is None):
            raise InputError(f"'{self.kind}' faults {'take no' if self.at is None else 'need'} "
                             "'at'", field="at")
        if self.at is not None and self.at < 0:
            raise InputError(f"at must be >= 0, got {self.at}", field="at")


@dataclass(frozen=True)
class Fault:
    """One fault: where x what x format x when (module doc)."""

    where: Where
    what: What = field(default_factory=What)
    fmt: NumberFormat = field(default_factory=lambda: number_format("fp32"))
    when: When = field(default_factory=When)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fmt", number_format(self.fmt))
        width = self.fmt.width
        bad = [b for b in self.what.bits if not 0 <= b < width]
        if bad:
            raise InputError(f"bit {bad[0]} is outside the {width}-bit {self.fmt} word "
                             f"(0..{width - 1})", field="bit")
        if self.what.word is not None and not 0 <= self.what.word < 2 ** width:
            raise InputError(f"word {self.what.word} does not fit {width} bits", field="word")

    @classmethod
    def of(cls, layer: str, index: Sequence[int], bits: Sequence[int] = (), *,
           role: str = "weight", kind: str = "bitflip", fmt: str | NumberFormat = "fp32",
           when: str = "permanent", at: int | None = None, run: int = 1,
           word: int | None = None, model: str = "") -> Fault:
        """A fault from flat arguments (the form scripts and the CSV reader use)."""
        return cls(Where(layer, tuple(index), role, model), What(kind, tuple(bits), run, word),
                   number_format(fmt), When(when, at))

    @property
    def image(self) -> int | None:
        """The one image an ``inference`` fault hits (None: every image)."""
        return self.when.at if self.when.kind == "inference" else None


def corrupt(values: torch.Tensor, fault: Fault,
            scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """``values`` stored in the fault's format, after the fault's kind on every element (the
    caller picks the elements: the fault's run). ``scale``: the fixed-point scale."""
    return formats.corrupt(values, fault.fmt, _word_op(fault.what, fault.fmt.width), scale)


def word_delta(values: torch.Tensor, what: What, fmt: str | NumberFormat,
               scale: torch.Tensor | float | None = None) -> torch.Tensor:
    """Change of each stored word's value under ``what`` (float64; :func:`formats.word_delta`)."""
    return formats.word_delta(values, fmt, _word_op(what, number_format(fmt).width), scale)


def _word_op(what: What, width: int) -> formats.WordOp:
    """The word operation of ``what`` on ``width``-bit words."""
    mask = sum(1 << b for b in what.bits)
    return lambda w: KINDS[what.kind].apply(w, mask, what, width)


def run_positions(fault: Fault, shape: Sequence[int]) -> torch.Tensor:
    """Flat (C-order) positions of the fault's ``run`` elements in a tensor of ``shape``;
    InputError when the index or the run leaves the tensor."""
    index, layer = fault.where.index, fault.where.layer
    if len(index) != len(shape) or any(not 0 <= i < s for i, s in zip(index, shape, strict=True)):
        raise InputError(f"index {index} is outside {layer}'s {fault.where.role} tensor of shape "
                         f"{tuple(shape)}", field="TensorIndex")
    start = 0
    for i, s in zip(index, shape, strict=True):
        start = start * s + i
    total = 1
    for s in shape:
        total *= s
    if start + fault.what.run > total:
        raise InputError(f"a run of {fault.what.run} from {index} leaves {layer}'s tensor of "
                         f"{total} elements", field="Run")
    return torch.arange(start, start + fault.what.run)


# -- the one CSV form --------------------------------------------------------------------------
# The first four columns are those of the public reliability benchmarks' fault lists; a file with
# only those (plus their count columns) reads with the other fields from ``defaults``.
COLUMNS = ("Injection", "Layer", "TensorIndex", "Bit", "Role", "Kind", "Format", "When", "At",
           "Run", "Word", "Model")
REQUIRED = COLUMNS[:4]


def format_index(index: Sequence[int]) -> str:
    return "(" + ", ".join(str(i) for i in index) + ")"


def to_record(injection: int, fault: Fault) -> list:
    """The fault's CSV fields, in :data:`COLUMNS` order."""
    w, what, when = fault.where, fault.what, fault.when
    return [injection, w.layer, format_index(w.index), ";".join(str(b) for b in what.bits),
            w.role, what.kind, str(fault.fmt), when.kind, "" if when.at is None else when.at,
            what.run, "" if what.word is None else what.word, w.model]


def _int(text: str, name: str, where: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{where}{name} {text!r} is not an integer", field=name) from None
    if value < 0:
        raise InputError(f"{where}{name} must be >= 0", field=name)
    return value


def _index(text: str, where: str) -> tuple[int, ...]:
    body = text.strip().strip("()[]").replace(" ", "")
    try:
        return tuple(int(p) for p in body.split(",") if p != "")
    except ValueError:
        raise InputError(f"{where}malformed TensorIndex {text!r}", field="TensorIndex") from None


def from_record(rec: Mapping[str, str], defaults: Mapping[str, str] | None = None,
                where: str = "") -> tuple[int, Fault]:
    """(Injection, Fault) of one CSV record (column -> text); a missing or empty optional column
    takes ``defaults`` (same column names) or the dataclasses' defaults. ``where`` prefixes
    messages (e.g. ``"line 7: "``)."""
    merged = {**(defaults or {}), **{k: v for k, v in rec.items() if v not in (None, "")}}
    get = merged.get
    bits = get("Bit", "")
    try:
        fault = Fault.of(
            get("Layer", "").strip(), _index(get("TensorIndex", ""), where),
            [_int(b, "Bit", where) for b in bits.split(";")] if bits.strip() else [],
            role=get("Role", "weight"), kind=get("Kind", "bitflip"), fmt=get("Format", "fp32"),
            when=get("When", "permanent"),
            at=_int(get("At"), "At", where) if get("At") not in (None, "") else None,
            run=_int(get("Run", "1"), "Run", where),
            word=_int(get("Word"), "Word", where) if get("Word") not in (None, "") else None,
            model=get("Model", ""))
    except InputError as exc:
        field_name = {"fault": "Kind", "format": "Format", "when": "When", "role": "Role",
                      "bit": "Bit", "at": "At", "run": "Run", "word": "Word"}.get(exc.field or "",
                                                                                  exc.field)
        msg = exc.reason if exc.reason.startswith(where) else where + exc.reason
        raise InputError(msg, field=field_name) from None
    return _int(get("Injection", ""), "Injection", where), fault


def read_csv(path: str | Path, defaults: Mapping[str, str] | None = None,
             ) -> list[tuple[int, Fault, dict[str, str]]]:
    """Every row of a fault CSV as (Injection, Fault, the row's other columns). InputError naming
    the file, line and column for anything malformed; a trailing partial line (a run killed
    mid-write) is ignored."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read fault list ({type(exc).__name__})", file=path) from None
    complete = text if text.endswith("\n") or not text else text[: text.rfind("\n") + 1]
    lines = list(csv.reader(complete.splitlines()))
    if not lines:
        raise InputError("empty fault list (no header)", file=path)
    header = [h.strip() for h in lines[0]]
    if tuple(header[:4]) != REQUIRED or len(set(header)) != len(header):
        raise InputError(f"header must start {','.join(REQUIRED)} (no repeated column)",
                         file=path, field="header")
    out, seen = [], set()
    for line, values in enumerate(lines[1:], start=2):
        if not values:
            continue
        if len(values) != len(header):
            raise InputError(f"line {line}: {len(values)} fields, expected {len(header)}",
                             file=path)
        rec = dict(zip(header, values, strict=True))
        try:
            inj, fault = from_record(rec, defaults, f"line {line}: ")
        except InputError as exc:
            raise InputError(exc.reason, file=path, field=exc.field) from None
        if inj in seen:
            raise InputError(f"line {line}: Injection {inj} repeated", file=path,
                             field="Injection")
        seen.add(inj)
        out.append((inj, fault, {k: v for k, v in rec.items() if k not in COLUMNS}))
    return out


def write_csv(path: str | Path, rows: Sequence[tuple[int, Fault]],
              extra_columns: Sequence[str] = (), extra: Sequence[Sequence] | None = None) -> None:
    """Write faults (and, per row, the values of ``extra_columns``) atomically: a kill leaves
    the old file or the new one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*COLUMNS, *extra_columns])
        for i, (inj, fault) in enumerate(rows):
            w.writerow([*to_record(inj, fault), *(extra[i] if extra is not None else ())])
    tmp.replace(path)
