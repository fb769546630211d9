""" "Does fusion help?": fused models against the best single group, clinical and volume."""

from __future__ import annotations

import numpy as np
import pandas as pd

from radfusion.pipeline.report import (
    fusion_benefit,
)
from radfusion.pipeline.report._fusion_benefit import (
    fusion_benefit_html,
)
from radfusion.pipeline.validation import compare_models, summarize


def summary(**aucs: float) -> dict:
    """The report's model summary, with only the mean ROC AUC filled in."""
    return {name: {"metrics": {"roc_auc": {"mean": auc}}} for name, auc in aucs.items()}


def row(model: str, reference: str, difference: float, low: float, high: float) -> dict:
    return {
        "model": model,
        "reference": reference,
        "auc_model": 0.7 + difference,
        "auc_reference": 0.7,
        "difference": difference,
        "ci_low": low,
        "ci_high": high,
        "p_holm": 0.5,
    }


FUSED = ("early", "late", "stacking", "shared")
MODELS = summary(CT__tumor=0.72, MR__tumor=0.66, clinical=0.61, volume=0.70, control=0.74)
MODELS.update(summary(early=0.75, stacking=0.71))


def test_fusion_that_does_not_beat_the_best_single_group_is_said_so_in_one_sentence():
    tests = [
        row("early", "CT__tumor", 0.03, -0.02, 0.08),
        row("stacking", "CT__tumor", -0.01, -0.06, 0.04),
        row("early", "clinical", 0.14, 0.05, 0.23),
        row("stacking", "clinical", 0.10, 0.01, 0.19),
        row("early", "volume", 0.05, -0.01, 0.11),
        row("stacking", "volume", 0.01, -0.05, 0.07),
        row("early", "MR__tumor", 0.09, 0.01, 0.17),  # not a reference: left out
    ]
    benefit = fusion_benefit(tests, MODELS, fused=FUSED)
    # the control arm scores highest but is a baseline, never "the best single group"
    assert benefit["references"] == {
        "best_single": "CT__tumor",
        "clinical": "clinical",
        "volume": "volume",
    }
    assert [(r["model"], r["reference"], r["verdict"]) for r in benefit["rows"]] == [
        ("early", "CT__tumor", "no clear difference"),
        ("stacking", "CT__tumor", "no clear difference"),
        ("early", "clinical", "better"),
        ("stacking", "clinical", "better"),
        ("early", "volume", "no clear difference"),
        ("stacking", "volume", "no clear difference"),
    ]
    assert benefit["helps"] == {"best_single": False, "clinical": True, "volume": False}
    first, second, third = benefit["sentences"]
    assert first.startswith("Fusion does not help over the best single group (CT__tumor, AUC")
    assert second == (
        "Fusion does better than the clinical-only model (clinical, AUC 0.610): AUC "
        "difference early +0.140 (95 % CI 0.050 to 0.230); stacking +0.100 (95 % CI 0.010 "
        "to 0.190)."
    )
    assert third.startswith("Fusion does not help over ROI volume alone (volume, AUC 0.700)")
    html = fusion_benefit_html(benefit)
    assert html.startswith('<h2 id="fusion-benefit">Does fusion help?</h2>')
    assert "Fusion does not help over the best single group" in html
    assert "+0.030 [-0.020, 0.080]" in html and "volume (volume-only)" in html


def test_a_worse_fused_model_and_a_reference_that_is_two_roles():
    models = summary(CT__tumor=0.60, clinical=0.70, late=0.55)
    tests = [
        row("late", "CT__tumor", -0.05, -0.09, -0.01),
        row("late", "clinical", -0.15, -0.25, -0.05),
    ]
    benefit = fusion_benefit(tests, models, fused=FUSED)
    # the best single group is the clinical one: one row, both roles; no volume model
    assert benefit["references"] == {
        "best_single": "clinical",
        "clinical": "clinical",
        "volume": None,
    }
    assert [(r["reference"], r["roles"], r["verdict"]) for r in benefit["rows"]] == [
        ("clinical", ["best_single", "clinical"], "worse")
    ]
    assert benefit["sentences"] == [
        "Fusion does not help over the best single group and the clinical-only model "
        "(clinical, AUC 0.700): no fused model's AUC is clearly higher (every 95 % interval "
        "of the AUC difference includes 0 or lies below it)."
    ]
    assert benefit["missing"] == []
    missing = fusion_benefit(tests[:1], summary(CT__tumor=0.6, volume=0.65, late=0.55), fused=FUSED)
    assert missing["missing"] == ["late vs volume"]


def test_on_real_comparison_rows_from_out_of_fold_predictions():
    rng = np.random.default_rng(0)
    n = 200
    y = rng.integers(0, 2, n)
    scores = {
        "CT__tumor": y + rng.normal(0, 1.0, n),
        "clinical": y + rng.normal(0, 3.0, n),
        "early": y + rng.normal(0, 0.4, n),
    }
    predictions = pd.DataFrame(
        [
            {
                "patient_id": f"P{i:03d}",
                "model": model,
                "repeat": 0,
                "fold": i % 5,
                "y_true": int(y[i]),
                "proba": float(1 / (1 + np.exp(-s[i]))),
            }
            for model, s in scores.items()
            for i in range(n)
        ]
    )
    pairs = [("early", "CT__tumor"), ("early", "clinical")]
    benefit = fusion_benefit(
        compare_models(predictions, pairs), summarize(predictions), fused=FUSED
    )
    assert benefit["references"]["best_single"] == "CT__tumor"
    assert benefit["helps"] == {"best_single": True, "clinical": True}
    assert all(r["ci_low"] > 0 for r in benefit["rows"])


def test_no_fused_model_gives_a_section_that_says_so():
    benefit = fusion_benefit([], summary(CT__tumor=0.6, clinical=0.55), fused=FUSED)
    assert benefit["rows"] == [] and benefit["sentences"] == []
    assert "Not assessed" in fusion_benefit_html(benefit)
