"""Worker processes die with their parent: ``kill -9`` of ``radfusion extract -j 2``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COHORT = [(f"P{i:02d}", modality, i) for i in range(8) for modality in ("CT", "MR")]


def _children(pid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                state, ppid = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            except OSError:
                continue
            if int(ppid) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _is_worker(pid: int) -> bool:
    try:
        return b"popen_loky_posix" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_exit_within_seconds_after_kill_9_of_extract(write_cohort, tmp_path):
    manifest = write_cohort(COHORT)
    command = [
        sys.executable,
        "-c",
        "from radfusion.pipeline.cli import main; main()",
        "extract",
        str(manifest),
        "--out",
        str(tmp_path / "f.parquet"),
        "--jobs",
        "2",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[int] = []
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2:
            assert process.poll() is None, "extract ended before its workers could be seen"
            assert time.monotonic() < deadline, "no loky workers started"
            workers = [pid for pid in _children(process.pid) if _is_worker(pid)]
            time.sleep(0.05)
        children = _children(process.pid)  # workers and loky's resource trackers
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in children if _alive(pid)]
        assert not left, f"still running 10 s after kill -9 of their parent: {left}"
    finally:  # leave nothing behind, whatever failed
        process.kill()
        process.wait()
        for pid in children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
