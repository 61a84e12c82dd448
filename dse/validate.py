"""The one place dse checks values and paths at its edges.

Every check raises :class:`~dse.errors.InputError` (one line naming the file and field, exit 2 on
the command line), so a bad value fails in the first second instead of after an hour of work, and
no command writes half a file. Why one module: checks scattered per command drift apart (one
command took ``nan`` where its neighbour refused it); here every number, name and output path goes
through the same few functions, and the argparse ``type=`` helpers below call them too.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import errno
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from dse.errors import InputError, one_line

# Longest single path component the common file systems take (bytes).
NAME_MAX = 255


# -------------------------------------------------------------------------------------- files

@contextlib.contextmanager
def parsing(file: str | Path, what: str) -> Iterator[None]:
    """The safety net around a loader: a structure the field checks did not foresee (a list where
    a mapping belongs, a number where a name belongs) still ends as one line naming the file,
    never a traceback. Field-level checks inside give the more precise message first."""
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError, IndexError, OverflowError,
            RecursionError, ZeroDivisionError) as exc:
        reason = one_line(exc)[:160]
        raise InputError(f"malformed {what} ({type(exc).__name__}: {reason})",
                         file=str(file)) from None


def torch_load(path: str | Path) -> Any:
    """``torch.load`` of a user's file, tensors only (``weights_only``: a pickle that would run
    code is refused, not run) and quietly: torch's warnings about pickle protocols would turn the
    caller's one-line refusal into three lines."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


# ------------------------------------------------------------------------------------- numbers

def number(value: Any, field: str, *, file: str | None = None, integer: bool = False,
           minimum: float | None = None, maximum: float | None = None,
           open_min: bool = False, open_max: bool = False) -> Any:
    """``value`` if it is a finite number (an int when ``integer``) inside the bounds.

    Booleans are refused (YAML's ``yes`` is not a count), and so are NaN and infinities: a NaN
    compares false with every bound, so an unchecked one slips through every ``<=`` test.
    """
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        kind = "an integer" if integer else "a finite number"
        raise InputError(f"must be {kind}, got {value!r}", file=file, field=field)
    low = minimum is not None and (value <= minimum if open_min else value < minimum)
    high = maximum is not None and (value >= maximum if open_max else value > maximum)
    if low or high:
        raise InputError(f"must be {_range_text(minimum, maximum, open_min, open_max)}, "
                         f"got {value!r}", file=file, field=field)
    return value


def _range_text(lo: float | None, hi: float | None, open_lo: bool, open_hi: bool) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
    if lo is not None:
        return f"{'>' if open_lo else '>='} {lo:g}"
    return f"{'<' if open_hi else '<='} {hi:g}"


def positive(value: Any, field: str, *, file: str | None = None, integer: bool = False) -> Any:
    return number(value, field, file=file, integer=integer, minimum=0, open_min=True)


def non_negative(value: Any, field: str, *, file: str | None = None,
                 integer: bool = False) -> Any:
    return number(value, field, file=file, integer=integer, minimum=0)


def fraction(value: Any, field: str, *, file: str | None = None) -> float:
    """A probability-like value strictly inside (0, 1): error margins, confidences."""
    return number(value, field, file=file, minimum=0, maximum=1, open_min=True, open_max=True)


# 2^28 values (1 GiB of fp32): far above any model's input, far below what crashes the allocator.
MAX_INPUT_ELEMENTS = 1 << 28


def shape(value: Any, field: str, *, file: str | None = None) -> tuple[int, ...]:
    """An input shape from ``1x3x224x224`` / ``1,3,224,224`` / a list: positive integers whose
    product a forward pass can hold."""
    try:
        if isinstance(value, str):
            dims = tuple(int(p) for p in value.replace(",", "x").lower().split("x"))
        else:
            dims = tuple(int(p) for p in value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"malformed shape {value!r}; expected e.g. 1x3x224x224",
                         file=file, field=field) from None
    if not dims or any(s <= 0 for s in dims):
        raise InputError(f"shape {value!r} must be positive integers", file=file, field=field)
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise InputError(f"shape {value!r} has {math.prod(dims):,} elements; at most "
                         f"{MAX_INPUT_ELEMENTS:,} (one forward pass must fit in memory)",
                         file=file, field=field)
    return dims


# ------------------------------------------------------------------------------ argparse types

def _arg(check: Any, parse: type) -> Any:
    """An argparse ``type=`` that parses with ``parse`` then applies ``check``; argparse reports
    the ArgumentTypeError as ``argument --flag: ...`` (one line, exit 2)."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            kind = "an integer" if parse is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check(value, "")
        except InputError as exc:
            raise argparse.ArgumentTypeError(exc.reason) from None

    convert.__name__ = getattr(check, "__name__", "value")
    return convert


positive_int = _arg(lambda v, f: positive(v, f, integer=True), int)
non_negative_int = _arg(lambda v, f: non_negative(v, f, integer=True), int)
positive_float = _arg(positive, float)
non_negative_float = _arg(non_negative, float)
fraction_arg = _arg(fraction, float)
finite_float = _arg(number, float)


# --------------------------------------------------------------------------------------- names

def resolve(name: Any, known: Iterable[str], field: str, *, file: str | None = None,
            what: str = "name") -> str:
    """``name`` if it is one of ``known``; else one line listing the closest matches."""
    known = list(known)
    if isinstance(name, str) and name in known:
        return name
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
    close = difflib.get_close_matches(str(name)[:200], known, n=3) if isinstance(name, str) \
        else []
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known) or '-'}"
    raise InputError(f"unknown {what} {shown} ({hint})", file=file, field=field)


def path_name(text: str, field: str, *, file: str | None = None) -> str:
    """A name that becomes part of a file path: refuses components the file system cannot hold."""
    for part in Path(text).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InputError(f"name too long for a file name ({len(part)} characters, at most "
                             f"{NAME_MAX})", file=file, field=field)
    if "\x00" in text:
        raise InputError("name contains a NUL character", file=file, field=field)
    return text


# -------------------------------------------------------------------------------------- outputs

def output_file(path: str | Path, field: str, *, file: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be written: a new file in a directory dse may
    create, or an existing regular file it may replace. Creates nothing."""
    path = Path(path)
    path_name(str(path), field, file=file)
    if path.is_dir():
        raise InputError(f"{str(path)!r} is a directory; expected a file path", file=file,
                         field=field)
    if path.exists() and not path.is_file():
        raise InputError(f"{str(path)!r} is not a regular file", file=file, field=field)
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{str(path)!r} is not writable", file=file, field=field)
    _creatable_dir(path.parent, field, file)
    return path


def output_dir(path: str | Path, field: str, *, file: str | None = None) -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable directory. Creates
    nothing; the writer creates it when it first writes."""
    path = Path(path)
    path_name(str(path), field, file=file)
    _creatable_dir(path, field, file)
    return path


def _creatable_dir(path: Path, field: str, file: str | None) -> None:
    """``path`` is a writable directory, or its nearest existing ancestor is one."""
    probe = Path(os.path.abspath(path))
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir would fail
            raise InputError(f"{str(probe)!r} is a broken symbolic link", file=file, field=field)
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{str(probe)!r} is not a directory", file=file, field=field)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{str(probe)!r} is not writable", file=file, field=field)


def make_dir(path: str | Path, field: str, *, file: str | None = None) -> Path:
    """Create the output directory ``path`` (a checked one), as one line on failure."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise os_error(exc, path, field) from None
    return path


def os_error(exc: OSError, path: str | Path, field: str | None = None) -> InputError:
    """One line for an OSError while writing ``path`` (full disk, read-only, name too long)."""
    reason = {errno.ENOSPC: "no space left on the device",
              errno.EROFS: "read-only file system",
              errno.EDQUOT: "disk quota exceeded"}.get(exc.errno, exc.strerror or str(exc))
    return InputError(f"cannot write: {reason}; nothing was replaced", file=str(path),
                      field=field)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, field: str | None = None,
                **kwargs: Any) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in the same directory, renamed over it only when
    complete (and flushed to disk): a kill, a full disk or an error leaves the old file as it was
    and no temporary behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:80]}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise os_error(exc, path, field) from None
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _unlink(tmp)
        raise os_error(exc, path, field) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_text(path: str | Path, text: str, *, field: str | None = None) -> Path:
    with atomic_open(path, "w", field=field) as fh:
        fh.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes, *, field: str | None = None) -> Path:
    with atomic_open(path, "wb", field=field) as fh:
        fh.write(data)
    return Path(path)
