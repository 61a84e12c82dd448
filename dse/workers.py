"""Worker processes for every stage that fans work out (sweeps, fault campaigns).

Workers are spawned, not forked (no threads or locks inherited from the driver), run one torch
thread each (on two cores, two threads per worker only fight), and end when their driver is gone
(after a kill -9 of the driver, a pool worker would otherwise wait on its task queue forever).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from typing import Any


def init_worker() -> None:
    import torch

    torch.set_num_threads(1)


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
