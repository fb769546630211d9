"""The external-validation and leave-one-site-out reports in headless Chromium, offline."""

import pytest

from radfusion.pipeline.experiment import run_cv
from radfusion.pipeline.external import validate_model

from ..test_browser import CHROMIUM, chromium, console_messages
from .two_site import write_two_site_model

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)"
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_site")
    paths = write_two_site_model(folder, n_a=60, n_b=40)
    validate_model(
        paths["model"],
        paths["features_B"],
        biomarkers=paths["biomarkers_B"],
        training_features=paths["features_A"],
        training_biomarkers=paths["biomarkers_A"],
        out=folder / "external",
        n_bootstrap=50,
    )
    run_cv(
        paths["features"],
        label="outcome",
        biomarkers=paths["biomarkers"],
        group_by="site",
        strategies=("single", "late"),
        out=folder / "loso",
        n_bootstrap=50,
        explain=False,
    )
    return folder


@pytest.mark.parametrize("name", ["external", "loso"])
def test_report_renders_offline_without_console_messages(reports, tmp_path, name):
    screenshot = tmp_path / "page.png"
    page = (reports / name / "report.html").as_uri()
    result = chromium(page, tmp_path / "profile", f"--screenshot={screenshot}")
    assert console_messages(result.stderr) == []
    assert "ERR_NAME_NOT_RESOLVED" not in result.stderr
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
