"""
Fusion against an honest anchor on a real radiomics table
=========================================================

Head-Neck-PET-CT from radMLBench: 91 patients, pyradiomics features of a CT and a PET
block, a binary outcome. The fair yardstick is nested cross-validation of a plain learner
(the RELY study's per-table AUCs, ``honest_anchors.csv``), not the best of a published grid,
which is scored on the folds that chose it. Scored the way RELY scores (10 stratified folds,
the mean of the folds' AUCs), radfusion's default model, late fusion of the two modalities and
a plain logistic regression are set side by side with the anchors.
"""

# %%
# The table
# ---------
# A radMLBench table has no ``modality__mask__feature`` names: its ``CT_...`` and ``PET_...``
# prefixes become the groups, and ``ID`` is read as the patient id, as text.
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline import FusionClassifier, load_dataset

# The shared data folder beside the repository (``make docs`` sets the variable).
radmlbench = Path(os.environ["RADFUSION_SHARED_DATA"]) / "radmlbench"
data = load_dataset(radmlbench / "datasets" / "Head-Neck-PET-CT.gz", label="Target")
print(
    f"{len(data.y)} patients ({int(data.y.sum())} positive);",
    {group: len(columns) for group, columns in data.groups.items()},
)

# %%
# Three models on the same folds
# ------------------------------
# ``FusionClassifier()`` is the default (``pooled``); ``"late"`` averages one branch per
# modality. The plain logistic regression is scikit-learn's, strongly regularised.
folds = StratifiedKFold(10, shuffle=True, random_state=0)
models = {
    "pooled (default)": FusionClassifier(),
    "late fusion": FusionClassifier("late"),
    "logistic regression": make_pipeline(StandardScaler(), LogisticRegression(C=0.01)),
}
ours = {
    name: cross_val_score(model, data.table, data.y, cv=folds, scoring="roc_auc").mean()
    for name, model in models.items()
}

# %%
# Against the anchors
# -------------------
anchors = pd.read_csv(radmlbench / "honest_anchors.csv", index_col="dataset")
row = anchors.loc["Head-Neck-PET-CT"]
reference = {
    "RELY nested-CV LR": row["nested_cv_l2_lr_auc"],
    "RELY nested-CV RF": row["nested_cv_rf_auc"],
    "published best of grid": row["published_best_of_grid_auc"],
}
table = pd.Series(ours | reference, name="mean fold AUC").round(3)
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(table.index, table.to_numpy(), color=["C0"] * len(ours) + ["C7"] * len(reference))
ax.set_xlim(0.5, 1.0)
ax.set_xlabel("ROC AUC (grey: published figures, not run here)")
fig.tight_layout()
table
