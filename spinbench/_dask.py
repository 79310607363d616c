"""Cells on Dask: a ``LocalCluster`` of worker processes on this machine, or any running
cluster (``dask scheduler`` + ``dask worker``, or ``dask-jobqueue`` on Slurm/PBS).

The task graph follows the data: per model one task for the reference cell, then one task
per method cell that depends on it (models are independent, so they run in parallel). A task
carries only the grid's text, the output folder and a cell id (:class:`CellJob`); a worker
rebuilds the plan from the text, reads the reference configurations from the shared output
folder's cache (written there by the reference task) and writes its cell's record there
atomically itself. The client writes only the records of cells whose task could not finish
(a worker lost more than Dask's ``allowed-failures`` times, say) and, at the end, the table.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ._plan import Cell
from ._runner import CellJob, run_job, runner_for

__all__ = ["DaskExecutor", "SchedulerUnreachable", "thread_environment", "worker_threads"]

#: Retries of a cell whose task raised on a worker (an exception, not a lost worker: Dask
#: reschedules the tasks of a lost worker itself, up to its ``allowed-failures``).
RETRIES = 1


class SchedulerUnreachable(ConnectionError):
    """The Dask scheduler at the given address did not answer."""


def worker_threads(workers: int, cores: int | None = None) -> int:
    """Threads for each of ``workers`` processes so that together they use the cores once."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


def thread_environment(threads: int) -> dict[str, str]:
    """Environment that limits a worker's XLA (and BLAS) threads to ``threads``."""
    return {
        "XLA_FLAGS": (
            f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
            f"intra_op_parallelism_threads={threads}"
        ),
        "OMP_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
    }


class DaskExecutor:
    """Runs cells as Dask tasks: ``workers`` local processes (a ``LocalCluster`` started and
    stopped with the run), or the cluster at ``scheduler`` (an address such as
    ``tcp://host:8786``). ``gpu`` asks each cell for one ``GPU`` resource (start GPU workers
    with ``--resources GPU=1``, one per GPU)."""

    in_process = False

    def __init__(
        self,
        *,
        workers: int | None = None,
        scheduler: str | None = None,
        gpu: bool = False,
        timeout: float = 10.0,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if workers is not None and scheduler is not None:
            raise ValueError("give either workers (a local cluster) or scheduler, not both")
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers}")
        self.workers = workers if workers is not None or scheduler is not None else 2
        self.scheduler = scheduler
        self.gpu = gpu
        self.timeout = timeout
        self.log = log or (lambda message: None)
        self._described: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        """The executor and its workers (host, threads, resources), for provenance."""
        return {"executor": "dask", **self._described}

    def _client(self) -> Any:
        from dask.distributed import Client, LocalCluster

        if self.scheduler is not None:
            try:
                return Client(self.scheduler, timeout=self.timeout)
            except (OSError, TimeoutError) as error:
                raise SchedulerUnreachable(
                    f"cannot reach the Dask scheduler at {self.scheduler} within "
                    f"{self.timeout:g} s ({type(error).__name__}: {error}); start one with "
                    "`dask scheduler` and workers with `dask worker ADDRESS`, or use "
                    "--workers N for a cluster on this machine"
                ) from error
        assert self.workers is not None
        threads = worker_threads(self.workers)
        cluster = LocalCluster(
            n_workers=self.workers,
            threads_per_worker=1,  # one cell at a time per worker: each is one jitted program
            processes=True,
            dashboard_address=":0",
            env=thread_environment(threads),
            resources={"GPU": 1} if self.gpu else None,
        )
        return Client(cluster)

    def submitted(self, client: Any) -> None:
        """Called once every cell is submitted (a hook for tests that break workers)."""

    def map(self, function: Callable[..., Any], cells: Iterable[Cell]) -> Iterator[Any]:
        """Submit the cells as a graph (method cells after their model's reference cell) and
        yield each record as its task finishes. ``function`` must be a :class:`CellJob`."""
        from dask.distributed import as_completed

        if not isinstance(function, CellJob):
            raise TypeError("DaskExecutor runs CellJob functions (see Runner.run)")
        cells = list(cells)
        client = self._client()
        try:
            devices = client.run(_device)
            info = client.scheduler_info()
            self._described = {
                "scheduler": client.scheduler.address,
                "dashboard": client.dashboard_link,
                "workers": [
                    {
                        "name": str(w.get("name")),
                        "host": w.get("host"),
                        "threads": w.get("nthreads"),
                        "resources": w.get("resources", {}),
                        "device": devices.get(address),
                    }
                    for address, w in info.get("workers", {}).items()
                ],
            }
            self.log(
                f"dask: {len(self._described['workers'])} workers at "
                f"{self._described['scheduler']}; dashboard {client.dashboard_link}"
            )
            resources = {"GPU": 1} if self.gpu else None
            references: dict[str, Any] = {}
            futures: dict[Any, Cell] = {}
            for cell in cells:
                if cell.kind == "reference":
                    future = client.submit(
                        run_job,
                        function,
                        cell.id,
                        key=f"cell-{cell.id}",
                        pure=False,
                        retries=RETRIES,
                        resources=resources,
                    )
                    references[cell.label] = future
                else:
                    future = client.submit(
                        run_job,
                        function,
                        cell.id,
                        references.get(cell.label),
                        key=f"cell-{cell.id}",
                        pure=False,
                        retries=RETRIES,
                        resources=resources,
                    )
                futures[future] = cell
            self.submitted(client)
            for future in as_completed(list(futures)):
                cell = futures[future]
                try:
                    # a result lost with its worker after it finished is computed again
                    record = future.result()
                except (Exception, asyncio.CancelledError) as error:  # raised, or no worker left
                    record = _failed(function, cell, f"{type(error).__name__}: {error}")
                yield record
        finally:
            cluster = client.cluster
            client.close()
            if cluster is not None:
                cluster.close()


def _device() -> str:
    """This worker's default JAX device (imports JAX on the worker)."""
    import jax

    return str(jax.devices()[0])


def _failed(job: CellJob, cell: Cell, reason: str) -> dict[str, Any]:
    """Record, from the client, a cell whose task could not finish on any worker."""
    return runner_for(job).record_failure(cell, f"the Dask task failed: {reason}")
