"""Base learners with defaults that suit radiomics tables (n ≈ 50–500, p ≈ 100–2000).

Every learner exposes ``predict_proba`` (soft voting and stacking need it), is deterministic
for a fixed ``random_state`` and single-threaded (parallelism belongs to the outer CV loop).
They expect standardised inputs without missing values; :func:`pipeline.fusion.make_branch`
puts each one behind imputation and scaling.
"""

from __future__ import annotations

from sklearn.base import ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC
from xgboost import XGBClassifier

from features.errors import InputError, Problem

LEARNERS = ("lr", "svm", "rf", "xgb")
"""Names accepted by :func:`make_learner`, in the order fusion models list them."""


def make_learner(name: str, random_state: int | None = 0) -> ClassifierMixin:
    """Return an unfitted base classifier with radiomics defaults.

    Parameters
    ----------
    name : {"lr", "svm", "rf", "xgb"}
        ``"lr"``: L2 logistic regression, strong shrinkage (``C=0.1``) because p ≫ n is the
        norm, balanced class weights.
        ``"svm"``: RBF SVC (``C=1``, ``gamma="scale"``, balanced class weights) whose decision
        values are mapped to probabilities by Platt scaling fitted on 5 internal stratified
        folds (``CalibratedClassifierCV(..., ensemble=False)``; this is what
        ``SVC(probability=True)`` does, which scikit-learn deprecated in 1.9).
        ``"rf"``: 200 trees, ``max_features="sqrt"``, balanced bootstrap class weights.
        ``"xgb"``: 200 shallow boosted trees (depth 3, learning rate 0.05, row subsample 0.8,
        column subsample 0.5), ``hist`` tree method. Expects labels 0/1 when used on its own
        (the fusion ensembles encode labels themselves).
    random_state : int or None, default=0
        Seed of every random choice (bootstrap, subsampling, Platt folds).

    Returns
    -------
    ClassifierMixin
        An unfitted scikit-learn compatible classifier.

    Raises
    ------
    InputError
        Unknown ``name`` (a ``ValueError``), listing the valid names.
    """
    if name == "lr":
        return LogisticRegression(
            C=0.1, class_weight="balanced", max_iter=10_000, random_state=random_state
        )
    if name == "svm":
        return CalibratedClassifierCV(
            SVC(C=1.0, gamma="scale", class_weight="balanced", random_state=random_state),
            method="sigmoid",
            cv=StratifiedKFold(5, shuffle=True, random_state=random_state),
            ensemble=False,
        )
    if name == "rf":
        return RandomForestClassifier(
            n_estimators=200,
            max_features="sqrt",
            class_weight="balanced_subsample",
            n_jobs=1,
            random_state=random_state,
        )
    if name == "xgb":
        return XGBClassifier(
            tree_method="hist",
            n_estimators=200,
            max_depth=3,
            learning_rate=0.05,
            subsample=0.8,
            colsample_bytree=0.5,
            eval_metric="logloss",
            n_jobs=1,
            random_state=random_state,
        )
    raise InputError(
        "Unknown learner",
        [Problem(f"{name!r} is not one of {', '.join(map(repr, LEARNERS))}")],
    )
