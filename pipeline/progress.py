"""Progress on long work: fits done of total, elapsed and ETA on a terminal; silent elsewhere.

A long computation reports to a *progress* callable, ``progress(done, total)``: once with
``done=0`` when it knows its total, then after every completed task. :class:`ProgressBar` is
the one the command line uses (a tqdm bar, drawn only when
:func:`radfusion.features.console.show_progress` says so: on a terminal, outside CI, without
``--quiet``); any other callable works too (a notebook's own display, a log line, a test's
list). :func:`run_tasks` runs joblib ``delayed`` calls and reports each one as it completes,
whatever the backend; its outputs, and so every result computed from them, are the same with
and without a progress callable. :func:`step` shows the elapsed time of one long step whose
inner work cannot be counted (``radfusion train``'s single fit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from joblib import Parallel, delayed
from tqdm.auto import tqdm

from radfusion.features.console import show_progress

__all__ = ["Progress", "ProgressBar", "run_tasks", "step"]

#: What long work reports to: called as ``progress(done, total)``.
Progress = Callable[[int, int], Any]


class ProgressBar:
    """A tqdm bar of tasks done of total, elapsed time and ETA, drawn on a terminal only.

    Call it as ``bar(done, total)`` (pass it as ``progress`` to :func:`run_tasks`,
    :func:`radfusion.pipeline.validation.cross_validate_models` or
    :func:`radfusion.pipeline.run_cv`). A bar opens at the first call and closes when ``done``
    reaches ``total``; the next call opens a new one, so one object can follow several runs in
    turn. It only displays: results are the same with it, without it, drawn or not.

    Parameters
    ----------
    desc : str, default="fits"
        The bar's label.
    unit : str, default="fit"
        What one task is.
    quiet : bool, default=False
        Never draw (a command's ``--quiet``).
    enabled : bool, optional
        Force drawing on (e.g. in a notebook, whose output is not a TTY) or off; default
        :func:`~radfusion.features.console.show_progress` of ``quiet`` and ``stream``.
    stream : file-like, optional
        Where to draw (default ``sys.stderr``).
    leave : bool, default=True
        Keep the finished bar on screen (False: erase it, for a bar per inner run).
    """

    def __init__(
        self,
        desc: str = "fits",
        *,
        unit: str = "fit",
        quiet: bool = False,
        enabled: bool | None = None,
        stream: TextIO | None = None,
        leave: bool = True,
    ) -> None:
        self.desc = desc
        self.unit = unit
        self.enabled = show_progress(quiet, stream) if enabled is None else bool(enabled)
        self.stream = stream
        self.leave = leave
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` tasks."""
        if not self.enabled:
            return
        if self._bar is None or done < self._bar.n:  # a new run
            self.close()
            self._bar = tqdm(
                total=total,
                desc=self.desc,
                unit=self.unit,
                file=self.stream,
                leave=self.leave,
                dynamic_ncols=True,
            )
        self._bar.update(done - self._bar.n)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Close the open bar, if any (a run stopped by an error)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run_tasks(
    calls: Iterable[tuple[Callable[..., Any], tuple, dict]],
    *,
    n_jobs: int | None = 1,
    progress: Progress | None = None,
) -> list[Any]:
    """Run joblib ``delayed`` calls on joblib workers; their outputs in the calls' order.

    Parameters
    ----------
    calls : iterable of ``joblib.delayed(f)(*args, **kwargs)``
        The tasks.
    n_jobs : int or None, default=1
        joblib workers (the active ``joblib.parallel_config`` backend, e.g. Dask, applies).
    progress : callable, optional
        Called as ``progress(0, total)`` first, then ``progress(done, total)`` after each task
        completes, in completion order (joblib's ``return_as="generator_unordered"``; the
        outputs are put back in the calls' order). A backend that cannot yield results as they
        come (``multiprocessing``) reports ``total`` once, at the end.

    Returns
    -------
    list
        ``[f(*args, **kwargs) for each call]``, the same with or without ``progress``.
    """
    calls = list(calls)
    if progress is None:
        return Parallel(n_jobs=n_jobs)(calls)
    total = len(calls)
    progress(0, total)
    try:
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
    except ValueError:  # the backend cannot return a generator
        outputs = Parallel(n_jobs=n_jobs)(calls)
        progress(total, total)
        return outputs
    outputs: list[Any] = [None] * total
    tagged = (delayed(_indexed)(index, call) for index, call in enumerate(calls))
    for done, (index, output) in enumerate(parallel(tagged), start=1):
        outputs[index] = output
        progress(done, total)
    return outputs


def _indexed(index: int, call: tuple[Callable[..., Any], tuple, dict]) -> tuple[int, Any]:
    """Run one ``delayed`` call in a worker; return its position with its output."""
    function, args, kwargs = call
    return index, function(*args, **kwargs)


@contextmanager
def step(
    desc: str,
    *,
    quiet: bool = False,
    enabled: bool | None = None,
    stream: TextIO | None = None,
    interval: float = 1.0,
) -> Iterator[None]:
    """Show one long step as ``desc: 0/1 [elapsed]``, ticking every ``interval`` seconds.

    For work with no countable inner tasks (one estimator's fit): the bar reaches 1/1 when the
    block ends without an error. ``quiet``, ``enabled`` and ``stream`` as in
    :class:`ProgressBar`.
    """
    if not (show_progress(quiet, stream) if enabled is None else enabled):
        yield
        return
    bar = tqdm(total=1, desc=desc, unit="step", file=stream, dynamic_ncols=True)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(interval):
            bar.refresh()

    ticker = threading.Thread(target=tick, name="radfusion-progress", daemon=True)
    ticker.start()
    try:
        yield
        bar.update(1)
    finally:
        stop.set()
        ticker.join()
        bar.close()
