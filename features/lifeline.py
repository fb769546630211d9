"""Worker processes that exit when the process that started them dies.

After ``kill -9`` of ``radfusion extract``, joblib's loky workers do not notice: each waits
for its next task on a queue with a timeout (joblib's idle timeout, 300 s), and the queue's
pipe stays open because every worker holds its writing end too, so no end-of-file arrives;
a task in progress also runs to its end. :func:`exit_with_parent`, called at the start of
each task with the pid of the process that submitted it, starts (once per worker) a daemon
thread that polls the worker's parent pid and ends the worker as soon as it changes.
"""

from __future__ import annotations

import os
import threading
import time

__all__ = ["POLL_SECONDS", "exit_with_parent"]

#: How often a worker looks whether its parent is still alive.
POLL_SECONDS = 0.2
#: Exit status of a worker whose parent died.
_ORPHAN_EXIT = 70

_lock = threading.Lock()
_watched: int | None = None


def exit_with_parent(parent: int, interval: float = POLL_SECONDS) -> None:
    """End this process (``os._exit``) soon after its parent ``parent`` dies.

    The caller guarantees that its workers are its direct children (joblib's loky backend
    starts them so). A worker whose parent is already gone when its first task arrives
    (it was still starting when the parent was killed) exits at once. Does nothing in the
    parent itself, or when already watching.

    Parameters
    ----------
    parent : int
        The pid of the process that started this worker (``os.getpid()`` there).
    interval : float, default=0.2
        Seconds between two looks at the parent pid.
    """
    global _watched
    if os.getpid() == parent:
        return
    if os.getppid() != parent:
        os._exit(_ORPHAN_EXIT)
    with _lock:
        if _watched == parent:
            return
        _watched = parent
    threading.Thread(
        target=_watch, args=(parent, interval), daemon=True, name="radfusion-exit-with-parent"
    ).start()


def _watch(parent: int, interval: float) -> None:
    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(_ORPHAN_EXIT)  # no cleanup: the run it served is gone
