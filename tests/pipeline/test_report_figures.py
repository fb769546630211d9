"""The paper figures of the binary report, read back from the drawn matplotlib figures: what
they show is what report.json holds (forest plot, ROC panels, decision-curve range,
calibration risk histogram, permutation importance), plus Table 1's SMD and grammar."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection
from matplotlib.patches import Rectangle

from radfusion.pipeline.report import (
    build_report,
    render_html,
)
from radfusion.pipeline.report._curves import MIN_CALLED_POSITIVE
from radfusion.pipeline.report._figures import (
    calibration_figure,
    decision_curve_figure,
    forest_figure,
    importance_figure,
    roc_figure,
    svg_text,
)
from radfusion.pipeline.statistics import describe_cohort, standardized_difference
from radfusion.pipeline.validation import CVResult, summarize
from tests.fabricated import FUSED, SINGLE, graded_predictions


def importance(selected):
    return {
        "n_repeats": 3,
        "top_k": 3,
        "groups": {
            group: [
                {
                    "feature": f"{group}__original_firstorder_F{i}",
                    "mean": 0.04 / (i + 1),
                    "sd": 0.05,
                    "selected": 0.5 if selected else None,
                }
                for i in range(3)
            ]
            for group in SINGLE
        },
    }


@pytest.fixture(scope="module")
def report():
    table = graded_predictions()
    explanations = {
        "meta_weights": None,
        "group_drop": None,
        "importance": importance(selected=False),
        "selection": {"ran": False, "note": "No feature selection was run."},
        "shap": "",
        "methods": [],
    }
    return table, build_report(
        CVResult.from_predictions(table, fused=FUSED),
        summarize(table, n_bootstrap=100),
        config={"command": "radfusion cv features.csv --label y", "learner": "lr"},
        seed=0,
        inputs={},
        groups={g: [f"{g}__x"] for g in SINGLE},
        n_bootstrap=100,
        explanations=explanations,
    )


def test_forest_plot_shows_every_auc_and_ci(report):
    _, report = report
    fig = forest_figure(report)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == SINGLE + FUSED  # single groups first, then fused
    segments = [
        s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()
    ]
    for i, name in enumerate(labels):
        auc = report["models"][name]["metrics"]["roc_auc"]
        assert any(np.allclose(s, [[auc["ci_low"], i], [auc["ci_high"], i]]) for s in segments), (
            name
        )
        (point,) = [line for line in ax.lines if list(line.get_ydata()) == [i]]
        assert point.get_xdata()[0] == auc["mean"]
        assert point.get_marker() == ("D" if name in FUSED else "o")
    (right,) = ax.child_axes  # the secondary y axis
    texts = [t.get_text() for t in right.get_yticklabels()]
    for name, text in zip(labels, texts, strict=True):
        auc = report["models"][name]["metrics"]["roc_auc"]
        assert text == f"{auc['mean']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]"


def test_roc_panels_are_square_with_a_legible_legend(report):
    _, report = report
    fig = roc_figure(report)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["Single groups", "Fused models"]
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    fig.draw_without_rendering()  # run the layout
    for ax, legend, names in zip(panels, legends, (SINGLE, FUSED), strict=True):
        assert ax.get_aspect() == 1.0
        # the legend is drawn inside the figure, below its panel
        box = legend.get_window_extent()
        assert box.y1 <= ax.get_window_extent().y0 and box.y0 >= 0
        assert box.x1 <= fig.bbox.x1
        entries = [t.get_text() for t in legend.get_texts()]
        assert [e.split("  ")[0] for e in entries[1:]] == names
        assert all(t.get_fontsize() >= 8 for t in legend.get_texts())
        for name, entry in zip(names, entries[1:], strict=True):
            auc = report["models"][name]["metrics"]["roc_auc"]
            assert entry.endswith(f"{auc['mean']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]")


def test_decision_curves_stop_where_too_few_patients_are_called_positive(report):
    table, report = report
    span = report["curves"]["decision_range"]
    thresholds = np.asarray(report["curves"]["thresholds"])
    n = table["patient_id"].nunique()
    need = max(MIN_CALLED_POSITIVE, 0.05 * n)
    for name, high in span["models"].items():
        rows = table[table["model"] == name]
        called = [(rows["proba"] >= t).sum() / rows["repeat"].nunique() for t in thresholds]
        kept = thresholds[np.asarray(called) >= need]
        assert high == kept.max()
        assert high < thresholds[-1]  # the tail near 1 is cut for every model here
    # The axis ends where no model beats treating no one any more (within its kept range).
    useful = max(
        t
        for name, limit in span["models"].items()
        for t, value in zip(
            thresholds, report["models"][name]["curves"]["net_benefit"], strict=True
        )
        if t <= limit and value is not None and value > 0
    )
    assert useful <= span["high"] <= max(span["models"].values())
    assert span["high"] == max(span["models"].values()) or span["high"] == pytest.approx(
        math.ceil(useful * 20 - 1e-9) / 20
    )
    fig = decision_curve_figure(report)
    for ax in fig.axes:
        assert ax.get_xlim() == (0.0, span["high"])
        for line in ax.lines:
            name = line.get_label()
            if name in span["models"]:
                assert max(line.get_xdata()) == pytest.approx(span["models"][name])
                k = len(line.get_xdata())
                assert np.allclose(
                    line.get_ydata(), report["models"][name]["curves"]["net_benefit"][:k]
                )
    assert html.escape(span["rule"]) in render_html(report)


def test_calibration_panels_carry_the_risk_histogram(report):
    table, report = report
    bins = np.asarray(report["curves"]["risk_bins"])
    fig = calibration_figure(report)
    hist_axes = fig.axes[1::2]
    for ax, name in zip(hist_axes, SINGLE + FUSED, strict=True):
        rows = table[table["model"] == name]
        repeats = rows["repeat"].nunique()
        counts = report["models"][name]["curves"]["risk_histogram"]
        for label in (0, 1):
            expected = np.histogram(rows.loc[rows["y_true"] == label, "proba"], bins)[0]
            assert np.allclose(counts[f"class{label}"], expected / repeats, atol=1e-6)
        heights = [p.get_height() for p in ax.patches if isinstance(p, Rectangle)]
        assert np.allclose(heights[: len(bins) - 1], counts["class1"], atol=1e-6)
        assert np.allclose(heights[len(bins) - 1 :], -np.asarray(counts["class0"]), atol=1e-6)
        # every patient is in one bin, once per repeat
        assert sum(counts["class0"]) + sum(counts["class1"]) == pytest.approx(len(rows) / repeats)


def test_importance_figure_and_selection_column(report):
    _, report = report
    fig = importance_figure(report)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == SINGLE
    for ax, group in zip(visible, SINGLE, strict=True):
        features = report["explanations"]["importance"]["groups"][group]
        widths = [p.get_width() for p in ax.patches]
        assert np.allclose(widths, [f["mean"] for f in features], atol=1e-6)
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert labels == [f["feature"].removeprefix(f"{group}__") for f in features]
    page = render_html(report)
    assert "Selection frequency" not in page  # no selector ran: no column of n/a
    selected = {**report, "explanations": {**report["explanations"]}}
    selected["explanations"]["importance"] = importance(selected=True)
    assert page.count('id="figure-importance"') == 1
    assert "<th>Selection frequency</th>" in render_html(selected)


def test_figures_are_byte_identical(report):
    _, report = report
    for draw, name in ((forest_figure, "auc_forest"), (calibration_figure, "calibration")):
        assert svg_text(draw(report), name) == svg_text(draw(report), name)


def test_table1_standardised_differences():
    rng = np.random.default_rng(1)
    n = 200
    y = rng.permutation(np.arange(n) % 2)
    age = 60 + 8 * y + rng.normal(0, 10, n)
    sex = np.where(rng.random(n) < 0.3 + 0.3 * y, "F", "M")
    stage = rng.choice(["I", "II", "III"], size=n, p=[0.5, 0.3, 0.2])
    variables = pd.DataFrame({"age": age, "sex": sex, "stage": stage})
    cohort = describe_cohort(y, ["no", "yes"], variables=variables)
    smd = {v["name"]: v["smd"] for v in cohort["variables"]}
    a, b = age[y == 0], age[y == 1]
    assert smd["age"] == pytest.approx(
        abs(b.mean() - a.mean()) / math.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    )
    p0, p1 = (np.mean(sex[y == k] == "M") for k in (0, 1))  # levels sorted: F, M
    assert smd["sex"] == pytest.approx(
        abs(p1 - p0) / math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    )
    # Three levels: Yang & Dalton's multivariate form, invariant to the reference level.
    values = next(v["values"] for v in cohort["variables"] if v["name"] == "stage")
    reordered = [{**v, "levels": dict(reversed(list(v["levels"].items())))} for v in values[1:]]
    assert smd["stage"] == pytest.approx(standardized_difference(reordered, "categorical"))
    assert standardized_difference(values[1:], "categorical") == smd["stage"]
    same = describe_cohort(y, ["no", "yes"], variables=pd.DataFrame({"c": np.zeros(n)}))
    assert same["variables"][0]["smd"] is None  # no spread in either class


def test_table1_html_shows_smd_and_methods_say_one_model():
    table = graded_predictions()
    table = table[table["model"] == "clinical"]
    rng = np.random.default_rng(0)
    y = table.drop_duplicates("patient_id")["y_true"].to_numpy()
    cohort = describe_cohort(
        y, ["0", "1"], variables=pd.DataFrame({"age": 50 + 5 * y + rng.normal(0, 5, len(y))})
    )
    report = build_report(
        CVResult.from_predictions(table, fused=FUSED),
        summarize(table, n_bootstrap=50),
        config={},
        seed=0,
        inputs={},
        groups={"clinical": ["age"]},
        cohort=cohort,
        n_bootstrap=50,
    )
    page = render_html(report)
    assert "<th>SMD</th>" in page
    assert f'<td class="num">{cohort["variables"][0]["smd"]:.2f}</td>' in page
    text = " ".join(report["methods"]["text"])
    assert "1 model was compared" in text and "1 models" not in text
