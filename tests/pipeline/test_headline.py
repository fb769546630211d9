"""The report's headline (issue 15, item 3): a model declared before the run, never the best
of N on the predictions it is scored on; validity warnings before the numbers."""

import numpy as np
import pytest

from radfusion.pipeline.report import (
    primary_model,
)
from radfusion.pipeline.report._checklists import (
    USER,
    build_checklists,
)
from radfusion.pipeline.report._document import (
    BEST_NOTE,
    validity_warnings,
)
from radfusion.pipeline.statistics import describe_cohort
from radfusion.pipeline.targets import get_task

MODELS = ["CT__tumor", "MR__tumor", "early", "late", "stacking", "pooled", "shared"]


def test_primary_is_declared_not_chosen_on_the_results():
    assert primary_model(MODELS, {}) == {"model": "pooled", "declared": "the default strategy"}
    survival = primary_model(MODELS[:5], {}, default_strategy=get_task("survival").default_strategy)
    assert survival == {"model": "stacking", "declared": "the default strategy"}
    assert primary_model(MODELS, {"primary": "late"}) == {"model": "late", "declared": "--primary"}
    assert primary_model(["CT__tumor", "early", "late"], {}, ["early", "late"])["model"] == "early"
    assert primary_model(["CT__tumor", "early", "late"], {})["model"] == "CT__tumor"  # none fused
    assert primary_model(["CT__tumor"], {})["model"] == "CT__tumor"
    with pytest.raises(ValueError, match="'nope' is not one of the models"):
        primary_model(MODELS, {"primary": "nope"})
    assert "optimistic" in BEST_NOTE.format(n=6)


def test_a_site_associated_with_the_outcome_is_a_warning_and_a_checklist_item():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat([0, 1], 60))
    site = np.where(np.where(y == 1, rng.random(120) < 0.66, rng.random(120) < 0.05), "A", "B")
    cohort = describe_cohort(y, ["no", "yes"], site=site)
    assert cohort["site_outcome_association"] > 0.5
    config = {"models": {"late": {"harmonize": "site"}}}
    (text,) = validity_warnings(cohort, config)
    assert "harmonisation cannot separate a confounded site" in text
    assert "external site" in validity_warnings(cohort, {})[0]
    data = {"n_patients": 120, "n_positive": 60, "n_negative": 60, "groups": {"CT": 3}}
    report = {"config": config, "cohort": cohort, "data": data, "models": {}, "methods": {}}
    (item,) = [
        i
        for i in build_checklists(report)["items"]
        if i["item"] == "19 Handling of confounding factors"
    ]
    assert item["status"] == USER and "cannot separate" in item["note"]

    unrelated = describe_cohort(y, ["no", "yes"], site=rng.choice(["A", "B"], 120))
    assert validity_warnings(unrelated, config) == []
    assert "site_outcome_association" not in describe_cohort(y, ["no", "yes"])
