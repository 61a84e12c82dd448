"""Where sweep tasks run: in this process, a local process pool, or a Dask cluster.

All three expose the same two calls, ``submit(fn, arg)`` and ``wait_first(futures)``, so the sweep
loop can hand out resilience work as soon as the mapping it needs is finished. Results do not depend
on the executor: every task is a pure function of its (pickled) inputs and seeds, and the store is
written only by the driver process.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Collection
from typing import Any

from dse.errors import InputError
from dse.workers import init_worker, process_pool


class InProcessExecutor:
    """Runs tasks one at a time in this process, when the driver waits for one.

    Deferring the work to ``wait_first`` (not ``submit``) keeps the driver storing each result as
    soon as it exists, so an in-process sweep resumes after a kill exactly like a pooled one.
    """

    name = "inprocess"

    def __init__(self) -> None:
        init_worker()
        self._work: dict[cf.Future, tuple[Callable[[Any], Any], Any]] = {}

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> cf.Future:
        fut: cf.Future = cf.Future()
        self._work[fut] = (fn, arg)
        return fut

    def wait_first(self, futures: Collection[Any], timeout: float | None = None) -> set[Any]:
        fut = next(iter(futures))
        fn, arg = self._work.pop(fut)
        try:
            fut.set_result(fn(arg))
        except Exception as exc:  # noqa: BLE001 - re-raised by fut.result() in the driver
            fut.set_exception(exc)
        return {fut}

    def close(self) -> None:
        self._work.clear()


class ProcessExecutor:
    """A local process pool (spawned workers: no inherited threads or locks from the driver)."""

    name = "process"

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool = process_pool(workers)

    def restart(self) -> None:
        """A fresh pool after a worker died (the old one refuses all further work)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = process_pool(self._workers)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> cf.Future:
        return self._pool.submit(fn, arg)

    def wait_first(self, futures: Collection[Any], timeout: float | None = None) -> set[Any]:
        """The finished futures (none when ``timeout`` passes first)."""
        done, _ = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return set(done)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor:
    """A Dask distributed client: an existing scheduler, or a LocalCluster started here."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, local_workers: int | None = None) -> None:
        try:
            import distributed
        except ImportError:
            raise InputError("the dask executor needs 'distributed' (pip install 'dse[dask]')",
                             field="executor") from None
        self._distributed = distributed
        self._cluster = None
        if scheduler:
            try:
                self._client = distributed.Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"cannot reach Dask scheduler: {exc}", field="scheduler") from None
        else:
            self._cluster = distributed.LocalCluster(
                n_workers=local_workers or 2, threads_per_worker=1, processes=True,
                dashboard_address=None, silence_logs=50)
            self._client = distributed.Client(self._cluster)
        self._client.run(init_worker)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Any:
        return self._client.submit(fn, arg, pure=False)

    def wait_first(self, futures: Collection[Any], timeout: float | None = None) -> set[Any]:
        try:
            done, _ = self._distributed.wait(list(futures), timeout=timeout,
                                             return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set()
        return set(done)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(kind: str, *, workers: int = 2, scheduler: str | None = None,
                  dask_local: int | None = None) -> Any:
    """The executor a config asks for (``--scheduler`` / ``--dask-local`` imply Dask)."""
    if scheduler or dask_local or kind == "dask":
        return DaskExecutor(scheduler, dask_local or workers)
    if kind == "inprocess" or workers == 1:
        return InProcessExecutor()
    return ProcessExecutor(workers)
