"""Progress on long work: drawn on a terminal only, counts every fit, never changes a result."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from joblib import delayed, parallel_config
from pandas.testing import assert_frame_equal
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from radfusion.features.console import show_progress
from radfusion.pipeline.progress import ProgressBar, run_tasks, step
from radfusion.pipeline.validation import cross_validate_models

from .conftest import multimodal_table


class Terminal(io.StringIO):
    """A stream that says it is a TTY, to see what a terminal would show."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def no_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)


def test_show_progress_only_on_a_terminal_outside_ci_and_not_quiet(no_ci, monkeypatch):
    assert show_progress(stream=Terminal())
    assert not show_progress(stream=io.StringIO())  # a log file, a pipe
    assert not show_progress(quiet=True, stream=Terminal())
    for value, shown in (("true", False), ("1", False), ("false", True), ("0", True), ("", True)):
        monkeypatch.setenv("CI", value)
        assert show_progress(stream=Terminal()) is shown, value


def test_bar_draws_done_of_total_on_a_terminal_and_nothing_elsewhere(no_ci, monkeypatch):
    terminal = Terminal()
    bar = ProgressBar("cv", stream=terminal)
    for done in range(4):
        bar(done, 3)
    assert "cv: 100%" in terminal.getvalue() and "3/3" in terminal.getvalue()
    for silent in (
        ProgressBar(stream=io.StringIO()),
        ProgressBar(quiet=True, stream=Terminal()),
    ):
        for done in range(4):
            silent(done, 3)
        assert silent.stream.getvalue() == ""
    monkeypatch.setenv("CI", "true")
    in_ci = ProgressBar(stream=Terminal())
    in_ci(0, 1), in_ci(1, 1)
    assert in_ci.stream.getvalue() == ""


def test_one_bar_follows_runs_in_turn(no_ci):
    terminal = Terminal()
    bar = ProgressBar("run", stream=terminal)
    for total in (2, 5):
        for done in range(total + 1):
            bar(done, total)
    drawn = terminal.getvalue()
    assert "2/2" in drawn and "5/5" in drawn
    assert drawn.count("\n") == 2  # each run's bar closed (left on its own line) at its end


def _slow_square(x: int, pause: float) -> int:
    time.sleep(pause)
    return x * x


def test_run_tasks_counts_every_task_and_keeps_the_calls_order():
    n = 6
    calls = [delayed(_slow_square)(i, 0.05 * (n - i)) for i in range(n)]  # first ends last
    seen = []
    with parallel_config(backend="threading"):
        outputs = run_tasks(calls, n_jobs=n, progress=lambda d, t: seen.append((d, t)))
        assert run_tasks(calls, n_jobs=n) == outputs  # without progress: plain joblib
    assert outputs == [i * i for i in range(n)]
    assert seen == [(done, n) for done in range(n + 1)]


def test_run_tasks_on_a_backend_without_generators_reports_at_the_end():
    seen = []
    with parallel_config(backend="multiprocessing"):
        outputs = run_tasks(
            [delayed(_slow_square)(i, 0.0) for i in range(4)],
            n_jobs=2,
            progress=lambda d, t: seen.append((d, t)),
        )
    assert outputs == [0, 1, 4, 9]
    assert seen == [(0, 4), (4, 4)]


def test_cv_predictions_are_identical_with_and_without_progress():
    X, y, _ = multimodal_table(n=80, p=4, missing_mr=0.0)
    models = {
        "lr": LogisticRegression(max_iter=500),
        "rf": RandomForestClassifier(n_estimators=20, random_state=0),
    }
    plain = cross_validate_models(models, X, y, folds=3, repeats=2, n_jobs=2)
    seen = []
    followed = cross_validate_models(
        models, X, y, folds=3, repeats=2, n_jobs=2, progress=lambda d, t: seen.append((d, t))
    )
    assert_frame_equal(plain.predictions, followed.predictions)
    assert plain.label_mapping == followed.label_mapping and plain.models == followed.models
    total = 3 * 2  # one task per (repeat, fold) split: its models share their fits
    assert seen == [(done, total) for done in range(total + 1)]


def test_step_ticks_and_ends_at_one_of_one(no_ci):
    terminal = Terminal()
    with step("train", stream=terminal, interval=0.02):
        time.sleep(0.1)
    drawn = terminal.getvalue()
    assert drawn.count("\r") >= 3  # redrawn while it worked: the elapsed time moves
    assert "1/1" in drawn
    with step("train", quiet=True, stream=Terminal()) as quiet:
        assert quiet is None


def _table(path):
    """A small two-group table (id, outcome, CT and MR columns) written as CSV."""
    X, y, _ = multimodal_table(n=40, p=3, missing_mr=0.0)
    table = X.iloc[:, :6].assign(outcome=y)
    table.index.name = "patient_id"
    table.to_csv(path)
    return path


def _on_a_terminal(command: list[str], out: Path) -> tuple[int, str, str]:
    """Run ``command`` with stderr on a pseudo-terminal of 100 columns, as in a shell; return
    its exit code, stdout and what the terminal received."""
    import fcntl
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    with open(out, "wb") as stdout:
        process = subprocess.Popen(command, stdout=stdout, stderr=follower, env=env)
        os.close(follower)
        drawn = b""
        try:
            while chunk := os.read(leader, 65536):  # read while it runs: a full pty blocks
                drawn += chunk
        except OSError:  # EIO: the process closed the terminal
            pass
        os.close(leader)
        code = process.wait()
    return code, out.read_text(), drawn.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal (POSIX pty)")
def test_cv_on_a_terminal_shows_the_bar_and_quiet_prints_nothing_extra(tmp_path):
    table = _table(tmp_path / "table.csv")
    cv = [sys.executable, "-m", "radfusion.pipeline.cli", "cv", str(table), "--label", "outcome"]
    cv += ["--strategy", "early", "--folds", "2", "--repeats", "1", "--jobs", "1", "--no-explain"]
    shown = {}
    for name, extra in (("bar", []), ("quiet", ["--quiet"])):
        code, stdout, drawn = _on_a_terminal(
            [*cv, "--out", str(tmp_path / name), *extra], tmp_path / f"{name}.txt"
        )
        assert code == 0, drawn
        shown[name] = ([s for s in stdout.splitlines() if not s.startswith("report:")], drawn)
    assert "cv: 100%" in shown["bar"][1] and "2/2 [" in shown["bar"][1]  # early x 2 folds
    assert shown["quiet"][1].strip() == ""  # no bar, no stray carriage return
    assert shown["quiet"][0] == shown["bar"][0]  # the same summary on stdout
    assert "early" in shown["quiet"][0][1]


def test_train_jobs_reach_the_estimator_without_changing_the_model(tmp_path):
    from radfusion.pipeline.persistence import train_model

    table = _table(tmp_path / "table.csv")
    params = {"learners": ("lr",)}
    fits = {}
    for jobs in (1, 2):
        with parallel_config(n_jobs=jobs):
            fits[jobs] = train_model(table, label="outcome", params=params, strategy="stacking")
    X = pd.read_csv(table, index_col="patient_id").drop(columns="outcome")
    np.testing.assert_array_equal(
        fits[1].estimator.predict_proba(X), fits[2].estimator.predict_proba(X)
    )
    assert fits[1].settings == fits[2].settings  # n_jobs is not recorded: it stays None
