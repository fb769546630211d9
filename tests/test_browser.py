"""report.html in a real browser: headless Chromium (Debian's ``chromium``) through its CLI.

Two runs of the browser on a small report:

1. the page as written, offline (every host name unresolvable): nothing may be logged to the
   console (a failed resource, a network request, a script error all are), and a full-page
   screenshot is saved under the test's temporary folder;
2. a probe copy of the page, next to it, with a script appended that checks, once the page
   has loaded, that every inline figure is a rendered SVG with drawn content, that every
   figure file of ``figures/`` (PNG and SVG) loads as an image, that the page requested no
   other resource, and that no error was raised or logged; the results are read back from
   the DOM that ``--dump-dom`` prints.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from radfusion.pipeline.report import (
    build_report,
    write_report,
)
from radfusion.pipeline.report._figures import (
    FIGURES,
)
from radfusion.pipeline.validation import CVResult, summarize
from tests.fabricated import graded_predictions

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not on PATH (Debian: apt-get install chromium)"
)
TIMEOUT = 120  # generous: only a hung browser gets near it

PROBE = """
<pre id="probe"></pre>
<div id="probe-images" style="position:absolute;left:-9999px">%(images)s</div>
<script>
const errors = [];
window.addEventListener("error", (e) => errors.push(String(e.message || e)));
const originalError = console.error;
console.error = (...args) => { errors.push(args.join(" ")); originalError(...args); };
window.addEventListener("load", () => {
  const figures = [...document.querySelectorAll("figure")].map((figure) => {
    const svg = figure.querySelector("svg");
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return {
      id: figure.id,
      svg: svg instanceof SVGSVGElement,
      width: box.width,
      height: box.height,
      drawn: svg ? svg.querySelectorAll("path, text, use").length : 0,
      contentWidth: svg ? svg.getBBox().width : 0,
    };
  });
  const images = [...document.querySelectorAll("#probe-images img")].map((img) => ({
    src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth,
  }));
  const resources = performance.getEntriesByType("resource").map((entry) => entry.name);
  document.getElementById("probe").textContent = JSON.stringify(
    {figures, images, errors, resources});
});
</script>
"""


def fabricated_explanations():
    """Meta-learner weights and permutation importance per group, so the contributions and
    importance figures have bars to draw."""
    groups = [
        {"group": g, "mean": w, "min": w / 2, "max": w * 1.5}
        for g, w in (("CT__tumor", 0.8), ("MR__tumor", 0.5), ("clinical", 0.3))
    ]
    return {
        "meta_weights": {"model": "stacking", "n_fits": 6, "branches": [], "groups": groups},
        "group_drop": None,
        "importance": {
            "n_repeats": 3,
            "top_k": 3,
            "groups": {
                g: [
                    {"feature": f"{g}__f{i}", "mean": 0.03 / (i + 1), "sd": 0.02, "selected": None}
                    for i in range(3)
                ]
                for g in ("CT__tumor", "MR__tumor", "clinical")
            },
        },
        "selection": {"ran": False, "note": "No feature selection was run."},
        "shap": {
            "model": "stacking",
            "computed": True,
            "note": "SHAP values of each branch of the headline model.",
            "branches": {
                f"{g}:lr": {
                    "kind": "linear",
                    "output": "log-odds of class 1",
                    "n_rows": 60,
                    "additivity_error": 1e-16,
                    "top": [{"feature": f"{g}__f{i}", "mean_abs": 0.3 / (i + 1)} for i in range(3)],
                }
                for g in ("CT/tumor", "MR/tumor")
            },
            "skipped": {"CT/tumor:svm": "no exact SHAP values"},
        },
        "methods": [],
    }


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    predictions = graded_predictions(n=60)
    summary = summarize(predictions, n_bootstrap=100)
    report = build_report(
        CVResult.from_predictions(predictions),
        summary,
        config={"command": "radfusion cv features.csv --label y"},
        seed=0,
        inputs={},
        groups={"CT__tumor": ["a"], "MR__tumor": ["b"], "clinical": ["c"]},
        n_bootstrap=100,
        explanations=fabricated_explanations(),
    )
    write_report(report, predictions, out)
    return out


def chromium(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``url``, offline, logging the console to stderr."""
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network, even by accident
        "--virtual-time-budget=10000",
        "--window-size=1280,900",
        *extra,
        url,
    ]
    # Decode explicitly: CI may run without a UTF-8 locale.
    result = subprocess.run(
        command, capture_output=True, encoding="utf-8", errors="replace", timeout=TIMEOUT
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_report_renders_offline_without_console_messages(report_dir, tmp_path):
    screenshot = tmp_path / "report.png"
    page = (report_dir / "report.html").as_uri()
    result = chromium(
        page, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1280,6000"
    )
    assert console_messages(result.stderr) == []
    assert "ERR_NAME_NOT_RESOLVED" not in result.stderr  # it never tried the network
    png = screenshot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 6000)


def test_every_figure_loads(report_dir, tmp_path):
    files = sorted(p.relative_to(report_dir).as_posix() for p in (report_dir / "figures").iterdir())
    assert len(files) == 2 * len(FIGURES)
    images = "".join(f'<img src="{html.escape(f)}" alt="">' for f in files)
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    probe = report_dir / "probe.html"
    probe.write_text(
        page.replace("</body>", PROBE % {"images": images} + "</body>"), encoding="utf-8"
    )

    result = chromium(probe.as_uri(), tmp_path / "profile", "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found and found.group(1), "the probe script did not run"
    state = json.loads(html.unescape(found.group(1)))

    assert state["errors"] == []
    assert console_messages(result.stderr) == []
    figures = {f["id"]: f for f in state["figures"]}
    assert sorted(figures) == sorted(f"figure-{name}" for name in FIGURES)
    for name, figure in figures.items():
        assert figure["svg"], name
        assert figure["width"] > 300 and figure["height"] > 200, name
        assert figure["drawn"] > 10 and figure["contentWidth"] > 100, name
    # The page fetches nothing from a network (file: URLs are the probe's own images).
    assert [url for url in state["resources"] if not url.startswith("file:")] == []
    assert [i["src"] for i in state["images"]] == files
    for image in state["images"]:
        assert image["complete"] and image["width"] > 100, image["src"]
