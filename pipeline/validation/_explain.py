"""What drives the models: modality contributions, top features per group, selection stability.

Everything is computed from the fitted models of the outer CV folds, inside the CV worker
(:class:`FoldExplainer` is the ``fold_hook`` of
:func:`radfusion.pipeline.validation.cross_validate_models`), on the held-out rows of each fold;
only small per-fold records travel back. :func:`summarize_explanations` aggregates them into the
``explanations`` field of ``report.json``:

- **meta-learner weights** of the stacking model: the ``coef_`` of its
  :class:`~radfusion.pipeline.fusion.NonNegativeLogisticRegression` (``combiner="logistic"``;
  the ``weights_`` of another combiner; none for ``"mean"``, a soft vote that fits none) per branch
  (``"<group>:<learner>"``), mean and range over the outer folds x repeats; a group's weight is the
  sum of its learners' weights in each fold (then mean and range). The weights multiply logits of
  probabilities (a combiner's: probabilities) on a common scale, so they are comparable across
  branches; missingness-indicator weights are left out.
- **AUC drop without a group** for the late (soft-vote) model: its held-out probabilities are
  recomputed without the group's branch by averaging the remaining branches' stored held-out
  probabilities, exactly what a late model refitted without the group in the same folds would
  predict (the branches are fitted independently); the AUC is pooled per repeat, as in
  :func:`radfusion.pipeline.validation.summarize`, then averaged over repeats.
- **permutation importance** of every feature of every single-group model on the held-out
  rows of each outer fold (permutation importance as in scikit-learn, batched; ROC AUC,
  ``n_repeats`` shuffles seeded by (seed, model, repeat, fold)), averaged over the folds; the
  top features per group are reported.
- **SHAP values** of the headline model's branches, exact for their linear and tree learners,
  on the held-out rows (:mod:`radfusion.pipeline.validation._shap`).
- **selection frequency**: when a feature selector ran (``correlation_threshold`` or
  ``select_k``), the fraction of outer folds in which the single-group model kept the feature.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectorMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..columns import branch_name
from ..statistics import auc_rows
from ._shap import branch_shap, summarize_shap

__all__ = [
    "N_REPEATS",
    "TOP_K",
    "FoldExplainer",
    "fold_seed",
    "held_out_importance",
    "late_without_groups",
    "meta_weights",
    "selected_features",
    "single_group_models",
    "summarize_explanations",
]

TOP_K = 10
"""Features reported per group."""
N_REPEATS = 3
"""Shuffles per feature and fold of the permutation importance."""


def fold_seed(seed: int, model: str, repeat: int, fold: int) -> int:
    """A 32-bit seed derived from (seed, model name, repeat, fold), stable across processes."""
    entropy = [int(seed) % 2**32, zlib.crc32(model.encode("utf-8")), int(repeat), int(fold)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def single_group_models(
    models: Sequence[str], groups: Mapping[str, Any], fused: Sequence[str]
) -> dict[str, str]:
    """``{model name: group}`` of the single-group models (``"early"`` with one group);
    ``fused`` names the models that combine groups."""
    if len(groups) == 1:
        return {"early": next(iter(groups))} if "early" in models else {}
    out = {}
    for name in models:
        group = name.removeprefix("single:") if name.startswith("single:") else name
        if name not in fused and group in groups:
            out[name] = group
    return out


# --------------------------------------------------------------------------- per fold
#: Cells predicted per batch of permuted copies (bounds memory on wide tables).
_BATCH_CELLS = 5_000_000


def held_out_importance(
    estimator: BaseEstimator,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    columns: Sequence[str],
    *,
    n_repeats: int = N_REPEATS,
    random_state: int = 0,
) -> np.ndarray:
    """Permutation importance (drop in ROC AUC) of ``columns`` on held-out rows.

    Only ``columns`` are shuffled, one at a time; the estimator still receives every column
    of ``X_test``. The permuted copies are stacked and predicted in a few large batches
    rather than one call per (column, shuffle): the same numbers as
    :func:`sklearn.inspection.permutation_importance`'s definition, at a fraction of the
    pipeline overhead. When every step before the learner works column by column (a branch
    without ComBat: selection, imputation with fitted values, filters, scaling), shuffling
    an input column shuffles its transformed column, so the steps run once, a column they
    dropped scores exactly 0, and a logistic regression's shuffled outputs are updated in
    its one changed term; the same numbers up to floating-point rounding.

    Returns
    -------
    ndarray of shape (len(columns),)
        Mean AUC drop over the ``n_repeats`` shuffles.
    """
    columns = list(columns)
    y_test = np.asarray(y_test)
    n_rows = len(X_test)
    baseline = auc_rows(y_test, estimator.predict_proba(X_test)[:, 1][None, :])[0]
    rng = np.random.default_rng(random_state)
    tasks = [(r, j) for r in range(n_repeats) for j in range(len(columns))]
    orders = [rng.permutation(n_rows) for _ in tasks]
    split = _columnwise_steps(estimator)
    if split is None:
        scores = _shuffled_scores(estimator, X_test, columns, tasks, orders)
    else:
        steps, learner = split
        transformed = np.asarray(steps.transform(X_test), dtype=np.float64)
        kept = {str(name): k for k, name in enumerate(steps.get_feature_names_out())}
        pairs = [(t, o) for t, o in zip(tasks, orders, strict=True) if columns[t[1]] in kept]
        tasks, orders = [t for t, _ in pairs], [o for _, o in pairs]
        positions = [kept[columns[j]] for _, j in tasks]
        names = getattr(learner, "feature_names_in_", None)
        scores = _shuffled_learner_scores(learner, transformed, positions, orders, names)
    drops = np.zeros((n_repeats, len(columns)))
    for (r, j), auc in zip(tasks, auc_rows(y_test, scores) if len(tasks) else [], strict=True):
        drops[r, j] = baseline - auc
    return drops.mean(axis=0)


#: Steps that transform each column on its own or select columns (no mixing of rows or columns):
#: imputation, scaling and every selector (constant-feature, robustness, correlation, top-k).
_COLUMNWISE = (SimpleImputer, StandardScaler, SelectorMixin)


def _columnwise_steps(estimator: BaseEstimator) -> tuple[Pipeline, BaseEstimator] | None:
    """``(steps before the learner, learner)`` of a pipeline whose steps all work column by
    column (its column selection passes columns through unchanged), else None."""
    if not isinstance(estimator, Pipeline) or len(estimator.steps) < 2:
        return None
    for _, step in estimator.steps[:-1]:
        if isinstance(step, ColumnTransformer):
            if any(t not in ("passthrough", "drop") for _, t, _ in step.transformers):
                return None
        elif not isinstance(step, _COLUMNWISE):
            return None
    return estimator[:-1], estimator[-1]


def _shuffled_copies(values, positions, orders, predict) -> np.ndarray:
    """``predict`` (stacked rows -> P(class 1)) of every copy of ``values`` whose column
    ``positions[t]`` is shuffled by ``orders[t]``, one row per t, in batches of copies."""
    n_rows = len(values)
    per_batch = max(1, _BATCH_CELLS // max(values.size, 1))
    scores = np.empty((len(positions), n_rows))
    for start in range(0, len(positions), per_batch):
        batch = range(start, min(start + per_batch, len(positions)))
        stacked = np.tile(values, (len(batch), 1))
        for k, t in enumerate(batch):
            column = positions[t]
            stacked[k * n_rows : (k + 1) * n_rows, column] = values[orders[t], column]
        scores[start : start + len(batch)] = predict(stacked).reshape(len(batch), n_rows)
    return scores


def _shuffled_scores(estimator, X_test, columns, tasks, orders) -> np.ndarray:
    """P(class 1) of every shuffled copy of ``X_test`` (one row per task) by the whole
    estimator."""
    values = X_test.to_numpy(copy=True)
    index = {name: i for i, name in enumerate(X_test.columns)}
    retyped = {c: t for c, t in X_test.dtypes.items() if t != values.dtype}

    def predict(stacked: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(stacked, columns=X_test.columns)
        return estimator.predict_proba(frame.astype(retyped) if retyped else frame)[:, 1]

    positions = [index[columns[j]] for _, j in tasks]
    return _shuffled_copies(values, positions, orders, predict)


def _shuffled_learner_scores(learner, transformed, positions, orders, names) -> np.ndarray:
    """The learner's P(class 1) with column ``positions[t]`` of ``transformed`` shuffled by
    ``orders[t]``, for every t: one changed term for a binary logistic regression, batches
    of shuffled copies otherwise. ``names``: the learner's input feature names, if any."""

    def table(values: np.ndarray) -> Any:
        return values if names is None else pd.DataFrame(values, columns=names)

    if isinstance(learner, LogisticRegression) and learner.coef_.shape[0] == 1:
        decision = learner.decision_function(table(transformed))
        weights = learner.coef_[0]
        scores = np.empty((len(positions), len(transformed)))
        for t, (k, order) in enumerate(zip(positions, orders, strict=True)):
            column = transformed[:, k]
            scores[t] = expit(decision + weights[k] * (column[order] - column))
        return scores
    return _shuffled_copies(
        transformed, positions, orders, lambda stacked: learner.predict_proba(table(stacked))[:, 1]
    )


def meta_weights(estimator: BaseEstimator) -> dict[str, float]:
    """``{branch name: weight}`` of a fitted stacking model's combiner: the meta-learner's
    ``coef_``, a combiner's ``weights_``, or equal weights for a soft vote (``"mean"``)."""
    names = [name for name, clf in estimator.estimators if clf != "drop"]
    final = getattr(estimator, "final_estimator_", None)
    if final is None:
        coef = np.full(len(names), 1.0 / len(names))
    elif hasattr(final, "weights_"):
        coef = np.asarray(final.weights_, dtype=np.float64)
    else:
        coef = np.asarray(final.coef_, dtype=np.float64).ravel()
    return {name: float(w) for name, w in zip(names, coef[: len(names)], strict=True)}


def _learns_weights(estimator: BaseEstimator) -> bool:
    """Whether a fitted stacking model learned its branch weights: not a soft vote
    (``"mean"``), nor ``"platt"``, whose weights are equal by design."""
    final = getattr(estimator, "final_estimator_", None)
    return final is not None and getattr(final, "method", None) not in ("mean", "platt")


def late_without_groups(estimator: BaseEstimator, X_test: pd.DataFrame) -> dict[str, np.ndarray]:
    """Held-out P(class 1) of a fitted late (soft-vote) model without each group's branches
    (its ``predict_proba_without_groups``): equal to refitting the model without the group,
    since every branch is fitted on its own."""
    return estimator.predict_proba_without_groups(X_test)


def selected_features(estimator: BaseEstimator) -> list[str] | None:
    """Input columns a fitted branch pipeline passes to its learner (None if unknown)."""
    if not isinstance(estimator, Pipeline):
        return None
    try:
        return [str(name) for name in estimator[:-1].get_feature_names_out()]
    except (AttributeError, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class FoldExplainer:
    """The ``fold_hook`` computing a fold's explanation record from its fitted model.

    Parameters
    ----------
    groups : mapping of str to sequence of str
        Feature groups and their columns.
    single : mapping of str to str
        ``{model name: group}`` of the single-group models (permutation importance).
    seed : int, default=0
        Base seed of the permutations (combined with model, repeat and fold).
    n_repeats : int, default=N_REPEATS
        Shuffles per feature.
    selection : bool, default=False
        Record the features each single-group model kept (a selector ran).
    late, stacking : str or None, default="late", "stacking"
        Names of the late and stacking models.
    tuned : bool, default=False
        Also record each branch's chosen hyperparameters (models built with ``tune=True``).
    shap : str or None, default=None
        Name of the model whose branches get exact SHAP values (the headline model).
    """

    groups: Mapping[str, Sequence[str]]
    single: Mapping[str, str]
    seed: int = 0
    n_repeats: int = N_REPEATS
    selection: bool = False
    late: str | None = "late"
    stacking: str | None = "stacking"
    tuned: bool = False
    shap: str | None = None

    def __call__(
        self,
        estimator: BaseEstimator,
        X_test: pd.DataFrame,
        y_test: np.ndarray,
        *,
        model: str,
        repeat: int,
        fold: int,
    ) -> dict[str, Any] | None:
        """The record of one fitted (model, repeat, fold), or None when nothing applies."""
        hyperparameters = estimator.chosen_hyperparameters() if self.tuned else None
        if hasattr(estimator, "inner_model"):
            estimator, X_test = estimator.inner_model(X_test)
        record: dict[str, Any] = {}
        if model in self.single and len(np.unique(y_test)) > 1:
            # a held-out group of one class (leave-one-site-out) has no AUC to drop
            columns = list(self.groups[self.single[model]])
            record["importance"] = held_out_importance(
                estimator,
                X_test,
                y_test,
                columns,
                n_repeats=self.n_repeats,
                random_state=fold_seed(self.seed, model, repeat, fold),
            )
            if self.selection:
                record["selected"] = selected_features(estimator)
        if model == self.late and len(self.groups) > 1:
            record["late"] = {
                "y": np.asarray(y_test),
                "full": np.asarray(estimator.predict_proba(X_test)[:, 1], dtype=np.float64),
                "without": late_without_groups(estimator, X_test),
            }
        if model == self.stacking and _learns_weights(estimator):
            record["weights"] = meta_weights(estimator)
        if model == self.shap:
            record["shap"] = branch_shap(estimator, X_test, name=model)
        if self.tuned:
            record["hyperparameters"] = hyperparameters
        return record or None


# --------------------------------------------------------------------------- aggregation
def _stats(values: Sequence[float]) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "min": float(values.min()), "max": float(values.max())}


def _meta(records: list[dict], groups: Mapping[str, Any]) -> dict[str, Any] | None:
    folds = [r["weights"] for r in records if "weights" in r]
    if not folds:
        return None
    of = {branch_name(g): g for g in groups}
    branches = list(folds[0])
    group_of = {b: of.get(b.rpartition(":")[0] or b) for b in branches}
    per_group = {
        g: [sum(w[b] for b in branches if group_of[b] == g) for w in folds]
        for g in groups
        if g in group_of.values()
    }
    return {
        "model": "stacking",
        "n_fits": len(folds),
        "branches": [
            {"branch": b, "group": group_of[b], **_stats([w[b] for w in folds])} for b in branches
        ],
        "groups": [{"group": g, **_stats(v)} for g, v in per_group.items()],
    }


def _group_drop(records: list[dict]) -> dict[str, Any] | None:
    late = [r for r in records if r["record"] and "late" in r["record"]]
    if not late:
        return None
    repeats = sorted({r["repeat"] for r in late})
    groups = list(late[0]["record"]["late"]["without"])
    full, without = [], {g: [] for g in groups}
    for repeat in repeats:
        parts = [r["record"]["late"] for r in late if r["repeat"] == repeat]
        y = np.concatenate([p["y"] for p in parts])
        full.append(roc_auc_score(y, np.concatenate([p["full"] for p in parts])))
        for g in groups:
            without[g].append(roc_auc_score(y, np.concatenate([p["without"][g] for p in parts])))
    full = np.asarray(full)
    return {
        "model": "late",
        "auc": float(full.mean()),
        "groups": [
            {
                "group": g,
                "auc_without": float(np.mean(without[g])),
                "drop": _stats(full - np.asarray(without[g])),
            }
            for g in groups
        ],
    }


def _importance(
    records: list[dict],
    groups: Mapping[str, Sequence[str]],
    single: Mapping[str, str],
    selection: bool,
    top_k: int,
) -> dict[str, Any]:
    out = {}
    for model, group in single.items():
        folds = [
            r["record"]
            for r in records
            if r["model"] == model and r["record"] and "importance" in r["record"]
        ]
        if not folds:
            continue
        columns = list(groups[group])
        values = np.vstack([f["importance"] for f in folds])  # (n_folds, n_columns)
        mean, sd = values.mean(axis=0), values.std(axis=0, ddof=0)
        kept = [f.get("selected") for f in folds]
        frequency = None
        if selection and all(k is not None for k in kept):
            frequency = np.mean([np.isin(columns, k) for k in kept], axis=0)
        order = np.argsort(-mean, kind="stable")[:top_k]
        out[group] = [
            {
                "feature": columns[j],
                "mean": float(mean[j]),
                "sd": float(sd[j]),
                "selected": None if frequency is None else float(frequency[j]),
            }
            for j in order
        ]
    return out


def summarize_explanations(
    records: list[dict[str, Any]],
    *,
    groups: Mapping[str, Sequence[str]],
    single: Mapping[str, str],
    selection: bool = False,
    n_repeats: int = N_REPEATS,
    top_k: int = TOP_K,
    shap: str | None = None,
) -> dict[str, Any]:
    """The report's ``explanations`` from the records of :class:`FoldExplainer`.

    Parameters
    ----------
    records : list of dict
        Second output of ``cross_validate_models(..., fold_hook=FoldExplainer(...))``.
    groups, single, selection, n_repeats
        As given to the :class:`FoldExplainer`.
    top_k : int, default=TOP_K
        Features reported per group (and per branch of the SHAP values).
    shap : str or None, default=None
        The model whose branches the :class:`FoldExplainer` explained with SHAP values.

    Returns
    -------
    dict
        ``meta_weights``, ``group_drop``, ``importance``, ``selection``, ``shap`` and
        ``methods`` (one sentence per item); see :mod:`radfusion.pipeline.report` for the schema.
    """
    stacked = [
        r["record"]
        for r in records
        if r["model"] == "stacking" and r["record"] and "weights" in r["record"]
    ]
    importance = _importance(records, groups, single, selection, top_k)
    return {
        "meta_weights": _meta(stacked, groups),
        "group_drop": _group_drop(records),
        "importance": {"n_repeats": n_repeats, "top_k": top_k, "groups": importance}
        if importance
        else None,
        "selection": {
            "ran": bool(selection),
            "note": "Selection frequency: fraction of outer folds (x repeats) in which the "
            "single-group model kept the feature after correlation filtering / top-k "
            "selection."
            if selection
            else "No feature selection was run (no correlation_threshold or select_k), so "
            "every feature was used in every fold; selection stability does not apply.",
        },
        "shap": summarize_shap(records, shap, top_k=top_k),
        "methods": [
            "Meta-learner weights: the stacking model's fitted combination weights per "
            "branch (the non-negative logistic meta-learner's coefficients, or a learned "
            "combiner's weights), over the outer folds x repeats (mean, min, max); a "
            "group's weight is the sum of its learners' weights in each fold."
            if stacked
            else "Meta-learner weights: not reported, because the stacking model fitted none "
            "(its combiner gives every branch the same weight by design, which says "
            "nothing about the modalities); the AUC drop below does.",
            "AUC drop: out-of-fold ROC AUC of the late (soft-vote) model minus the same with "
            "a group's branch removed, computed by averaging the remaining branches' stored "
            "held-out probabilities (identical to refitting without the group in the same "
            "folds); AUC pooled per repeat, mean and range over repeats.",
            f"Permutation importance: drop in ROC AUC when one feature is shuffled among the "
            f"held-out patients of an outer fold ({n_repeats} shuffles, seeded per model, "
            f"repeat and fold), for each single-group model, averaged over folds x repeats "
            f"(sd across folds); top {top_k} per group.",
        ],
    }
