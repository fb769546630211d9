"""One fusion branch: the columns of one group (or several) → impute → filter → scale → learner.

:func:`make_branch` builds it; :func:`branch_name` names it inside an ensemble. Every step is
fitted on the rows passed to ``fit`` only, so a branch goes straight into cross-validation.
Fusion models (:mod:`radfusion.pipeline.fusion`) and tuned branches
(:mod:`radfusion.pipeline.fusion`) are both built from it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sklearn.base import ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.features.errors import InputError, Problem

from ..learners import make_learner
from ..preprocessing import ComBat, CorrelationFilter, RobustnessFilter, SelectTopK, VarianceFilter

__all__ = ["DropConstantFeatures", "make_branch"]


class DropConstantFeatures(VarianceFilter):
    """Drop features that are constant on the training data (zero variance).

    :class:`radfusion.pipeline.preprocessing.VarianceFilter` with ``threshold=0`` and no parameters:
    when *every* feature is constant it keeps them all instead of raising, so a branch whose
    modality is missing (all NaN, imputed to a constant) in a training fold predicts the base
    rate instead of aborting the whole CV run.
    """

    threshold = 0.0

    def __init__(self):
        pass


def make_branch(
    columns: Sequence[str],
    learner: str | ClassifierMixin = "lr",
    random_state: int | None = 0,
    *,
    harmonize: str | None = None,
    harmonize_columns: Sequence[str] | None = None,
    harmonize_unseen: str = "pooled",
    icc_table=None,
    icc_threshold: float = 0.75,
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
    early_stopping: bool = False,
    resample: str | None = None,
) -> Pipeline:
    """One fusion branch: the given DataFrame columns → impute → filter → scale → learner.

    Parameters
    ----------
    columns : sequence of str
        Names of the DataFrame columns this branch sees (all others are dropped).
    learner : str or estimator, default="lr"
        A classifier name of :func:`radfusion.pipeline.learners.make_learner`, or an unfitted
        estimator (cloned): a regressor or survival learner for those targets.
    random_state : int or None, default=0
        Seed of the learner (ignored when ``learner`` is an estimator).
    harmonize : str, optional
        Name of the site column of the DataFrame: the branch's columns (those in
        ``harmonize_columns``) are harmonised by :class:`~radfusion.pipeline.preprocessing.ComBat`
        before imputation. The site column is read by ComBat and is not a feature.
    harmonize_columns : sequence of str, optional
        The columns to harmonise (default: all of ``columns``); the others pass through.
    harmonize_unseen : {"error", "pooled"}, default="pooled"
        ComBat's handling of a site not seen in training (see :class:`ComBat`).
    icc_table : path or DataFrame, optional
        Add a :class:`~radfusion.pipeline.preprocessing.RobustnessFilter` after the constant
        filter: keep the features whose ICC in this table (columns ``feature``, ``icc``, e.g.
        from ``radfusion robustness``) reaches ``icc_threshold``; features the table does not
        name are kept.
    icc_threshold : float, default=0.75
        Lowest ICC kept by the robustness filter.
    correlation_threshold : float, optional
        Add a :class:`~radfusion.pipeline.preprocessing.CorrelationFilter` (Pearson) with this
        threshold after the constant (and robustness) filter.
    select_k : int, optional
        Add a :class:`~radfusion.pipeline.preprocessing.SelectTopK` keeping ``select_k`` features.
    select_method : {"anova", "mrmr"}, default="anova"
        Method of the top-k selector.
    early_stopping : bool, default=False
        ``"xgb"`` only: use :class:`~radfusion.pipeline.learners.EarlyStoppingXGBClassifier` (step
        ``earlystoppingxgbclassifier``), as tuned branches do.
    resample : {"smote"}, optional
        Oversample the minority class with imbalanced-learn's ``SMOTE`` (step ``smote``, seeded
        by ``random_state``) between scaling and the learner; the branch is then an
        ``imblearn.pipeline.Pipeline``, whose samplers act only in ``fit`` (never on the rows
        being predicted). Needs the optional package ``imbalanced-learn``. Classification only.

    Returns
    -------
    Pipeline
        Steps ``columntransformer`` (selection, ``remainder="drop"``; with ``harmonize`` its
        transformer ``combat`` harmonises and ``select`` passes the other columns through),
        ``simpleimputer`` (median, all-NaN columns kept as 0), ``dropconstantfeatures``,
        optionally ``robustnessfilter``, ``correlationfilter`` and ``selecttopk``,
        ``standardscaler`` and the learner, named after its class (e.g.
        ``logisticregression``). Without the optional arguments the branch is exactly the
        historical one.
    """
    if resample not in (None, "smote"):
        raise InputError("Unknown resampling", [Problem(f"{resample!r} is not 'smote'")])
    columns = [c for c in dict.fromkeys(columns) if c != harmonize]
    if not columns:
        raise ValueError("a branch needs at least one column")
    if isinstance(learner, str):
        estimator = make_learner(learner, random_state, early_stopping=early_stopping)
    else:
        estimator = clone(learner)
    harmonized = []
    if harmonize is not None:
        wanted = set(columns if harmonize_columns is None else harmonize_columns)
        harmonized = [c for c in columns if c in wanted]
    passthrough = [c for c in columns if c not in set(harmonized)]
    transformers = []
    if harmonized:
        combat = ComBat(batch=harmonize, unseen=harmonize_unseen)
        transformers.append(("combat", combat, [*harmonized, harmonize]))
    if passthrough:
        transformers.append(("select", "passthrough", passthrough))
    select = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    steps = [
        select,
        SimpleImputer(strategy="median", keep_empty_features=True),
        DropConstantFeatures(),
    ]
    if icc_table is not None:
        steps.append(RobustnessFilter(icc_table, threshold=icc_threshold))
    if correlation_threshold is not None:
        steps.append(CorrelationFilter(threshold=correlation_threshold))
    if select_k is not None:
        steps.append(SelectTopK(k=select_k, method=select_method))
    if resample == "smote":
        try:
            from imblearn.over_sampling import SMOTE
            from imblearn.pipeline import make_pipeline as make_imblearn_pipeline
        except ImportError as error:
            raise InputError(
                "resample='smote' needs imbalanced-learn",
                [Problem("install it: pip install imbalanced-learn")],
            ) from error
        return make_imblearn_pipeline(
            *steps, StandardScaler(), SMOTE(random_state=random_state), estimator
        )
    return make_pipeline(*steps, StandardScaler(), estimator)
