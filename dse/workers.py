"""Worker processes for every stage that fans work out (sweeps, fault campaigns).

Workers are spawned, not forked (no threads or locks inherited from the driver), run one torch
thread each (on two cores, two threads per worker only fight), and end when their driver is gone
(after a kill -9 of the driver, a pool worker would otherwise wait on its task queue forever).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def init_worker() -> None:
    """One torch thread in this process, without importing torch here: a worker that only maps
    layers never needs it, and the import costs ~2 s of every pool's start-up. If torch is
    loaded, it is told directly; if not, OMP_NUM_THREADS=1 makes its later import start with
    one thread (``torch.get_num_threads() == 1`` either way)."""
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    else:
        os.environ["OMP_NUM_THREADS"] = "1"


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def init_pool_worker(setup: Callable[..., Any] | None = None, *setup_args: Any) -> None:
    """Set a fresh pool worker up; ``setup(*setup_args)`` then builds its per-worker state."""
    init_worker()
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    if setup is not None:
        setup(*setup_args)


def process_pool(workers: int, setup: Callable[..., Any] | None = None,
                 setup_args: tuple = ()) -> cf.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each set up by :func:`init_pool_worker`."""
    return cf.ProcessPoolExecutor(max_workers=workers,
                                  mp_context=multiprocessing.get_context("spawn"),
                                  initializer=init_pool_worker, initargs=(setup, *setup_args))


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cap_workers(requested: int, work: int | None = None, *, flag: str = "--workers"
                ) -> tuple[int, str | None]:
    """``requested`` lowered to the usable cores and the units of work, with a one-line note when
    lowered: more processes than cores only fight (and each costs a torch import's memory)."""
    cores = usable_cores()
    limit = min(cores, work) if work is not None else cores
    n = max(1, min(requested, limit))
    if n >= requested:
        return requested, None
    why = f"{cores} usable cores" + (f", {work} units of work" if work is not None else "")
    return n, f"{flag} {requested} lowered to {n} ({why})"
