"""Run extraction tasks on a Dask cluster (``dask.distributed``), results as they complete.

The tasks carry file paths and parameters, never voxels: each worker reads its case's image
and mask itself, so workers need to see the files under the same paths as the client (a
shared file system) and to have radfusion installed.

With dask-jobqueue on a SLURM or PBS cluster, start the workers as jobs and pass the client
(or the scheduler's address) to :func:`radfusion.features.runner.extract_cohort`::

    from dask_jobqueue import SLURMCluster        # or PBSCluster
    from distributed import Client

    # One single-threaded worker process per core: pyradiomics holds the GIL for part of
    # its work, and each task limits SimpleITK and BLAS to one thread.
    cluster = SLURMCluster(cores=8, processes=8, memory="32GB", walltime="02:00:00")
    cluster.scale(jobs=4)                          # 4 nodes x 8 workers
    client = Client(cluster)
    result = extract_cohort("manifest.csv", client=client, cache_dir="cache/")

Give each worker process the memory of the largest case (a CT volume and its mask, plus
pyradiomics' working copies: typically 1-4 GB). From the command line, start a scheduler
and workers (``dask scheduler``; ``dask worker tcp://HOST:8786 --nworkers 8 --nthreads 1``)
and run ``radfusion extract ... --dask-scheduler tcp://HOST:8786``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["dask_client", "map_unordered"]


@contextmanager
def dask_client(client: Client | str) -> Iterator[Client]:
    """A ``distributed.Client``: ``client`` itself, or one connected to a scheduler address.

    A client connected here (from an address) is closed on exit; a given client is left
    open.
    """
    from distributed import Client

    if not isinstance(client, str):
        yield client
        return
    connected = Client(client)
    try:
        yield connected
    finally:
        connected.close()


def map_unordered(
    client: Client,
    function: Callable[..., Any],
    arguments: Sequence[tuple],
    on_error: Callable[[tuple, BaseException], Any],
) -> Iterator[Any]:
    """``function(*args)`` for each ``args`` of ``arguments`` on the cluster, as completed.

    Parameters
    ----------
    client : distributed.Client
        The cluster to run on.
    function : callable
        Importable by the workers (a module-level function of an installed package).
    arguments : sequence of tuple
        One tuple of positional arguments per task (small: paths and parameters).
    on_error : callable
        ``on_error(args, exception)`` gives the value yielded for a task that raised on
        the cluster (e.g. its worker died), so one lost task does not stop the others.

    Yields
    ------
    object
        Each task's result (or ``on_error``'s), in completion order. Tasks still pending
        when the iteration stops early (``close()``, an exception) are cancelled.
    """
    from distributed import as_completed

    pending = {client.submit(function, *args, pure=False): args for args in arguments}
    try:
        for future in as_completed(list(pending)):
            args = pending.pop(future)  # dropping the reference frees the result on the cluster
            try:
                result = future.result()
            except Exception as error:  # the task raised on the cluster
                result = on_error(args, error)
            del future
            yield result
    finally:
        if pending:
            client.cancel(list(pending))
