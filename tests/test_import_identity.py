"""radfusion is installed as radfusion.features / radfusion.pipeline, so a user's own
``pipeline.py`` or ``features/`` package in the working folder shadows nothing of ours."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

DECOY = 'raise ImportError("the user\x27s own {name} was imported instead of radfusion")\n'


def plant_decoys(folder: Path) -> None:
    """A local ``pipeline.py`` module and a local ``features/`` package, as in many ML projects."""
    (folder / "pipeline.py").write_text(DECOY.format(name="pipeline.py"), encoding="utf-8")
    (folder / "features").mkdir()
    (folder / "features" / "__init__.py").write_text(
        DECOY.format(name="features/"), encoding="utf-8"
    )


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def decoy_folder(tmp_path):
    plant_decoys(tmp_path)
    return tmp_path


def test_public_api_imports_beside_a_local_pipeline_and_features(decoy_folder):
    code = (
        "from radfusion.features.runner import extract_cohort\n"
        "from radfusion.features.synthetic import make_cohort\n"
        "from radfusion.pipeline.experiment import run_cv\n"
        "from radfusion.pipeline.fusion import build_model\n"
        "print('ok')\n"
    )
    result = run([sys.executable, "-c", code], decoy_folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_cli_runs_beside_a_local_pipeline_and_features(decoy_folder):
    radfusion = Path(sys.executable).with_name("radfusion")
    if not radfusion.exists():
        pytest.skip(f"no radfusion console script beside {sys.executable}")
    made = run([str(radfusion), "synth", "--out", "cohort", "--patients", "6"], decoy_folder)
    assert made.returncode == 0, made.stderr
    checked = run([str(radfusion), "check", "cohort/manifest.csv"], decoy_folder)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "imported instead of radfusion" not in checked.stdout + checked.stderr


def test_installed_names_are_radfusion_only():
    import radfusion.features
    import radfusion.pipeline

    root = Path(__file__).resolve().parents[1]
    assert Path(radfusion.features.__file__).resolve() == root / "features" / "__init__.py"
    assert Path(radfusion.pipeline.__file__).resolve() == root / "pipeline" / "__init__.py"


@pytest.mark.parametrize("package", ["radfusion.features", "radfusion.pipeline"])
def test_each_package_exports_its_user_api_lazily(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        exported = getattr(module, name)
        assert exported.__module__.startswith(package), name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        module.nothing  # noqa: B018
