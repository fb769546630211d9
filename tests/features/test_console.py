"""quiet_warnings: third-party notices filtered at our entry points, here and in workers."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from radfusion.features.console import quiet_warnings

OLD_API = "import warnings; warnings.warn('old api', DeprecationWarning)"


def _raise(module: str, category: type[Warning] = DeprecationWarning) -> list:
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("old api", category, "file.py", 1, module=module)
    return caught


def test_third_party_deprecations_are_filtered_ours_are_not(monkeypatch):
    monkeypatch.setenv("PYTHONWARNINGS", "")  # restored after the test
    monkeypatch.setattr(sys, "warnoptions", [])
    with warnings.catch_warnings():  # the filters set here are undone after the test
        warnings.simplefilter("always")
        quiet_warnings()
        assert _raise("radiomics.glcm") == []
        assert _raise("pykwalify.core", FutureWarning) == []
        assert len(_raise("radfusion.features.extract")) == 1
        assert len(_raise("radiomicsfoo")) == 1  # a package name, not a prefix
        assert len(_raise("radiomics", UserWarning)) == 1  # not a deprecation notice
    # Worker processes started now inherit the filter through the environment.
    child = subprocess.run(
        [sys.executable, "-c", OLD_API], capture_output=True, text=True, check=True
    )
    assert "old api" not in child.stderr


@pytest.mark.parametrize("user_choice", ["env", "option"])
def test_a_user_who_chose_warning_filters_keeps_them(monkeypatch, user_choice):
    if user_choice == "env":
        monkeypatch.setenv("PYTHONWARNINGS", "default")
    else:
        monkeypatch.setenv("PYTHONWARNINGS", "")  # restored after the test
        monkeypatch.setattr(sys, "warnoptions", ["default"])
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        quiet_warnings()
        assert len(_raise("radiomics.glcm")) == 1
    child = subprocess.run(
        [sys.executable, "-c", OLD_API], capture_output=True, text=True, check=True
    )
    assert "old api" in child.stderr
