"""Late fusion with missing modalities: a soft vote over the branches each patient has."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import VotingClassifier, VotingRegressor
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from .._sklearn_compat import StrOptions, check_sample_weight, validate_params
from ..shared_fits import fit_once
from ._availability import Availability, rows_or_all, set_named_estimators, trainable_rows
from ._meta import LOGIT_CLIP

__all__ = ["AvailableVotingClassifier", "AvailableVotingRegressor"]


class _AvailableVoting(Availability):
    """Fit and average shared by the voting classifier and regressor with missing modalities."""

    def _fit_branches(self, X, y, sw, n_classes: int | None):
        """Fit each kept branch on the rows having its group (``y`` encoded; ``n_classes``
        None for regression); set the fitted attributes."""
        names, estimators = self._checked_branches(typed=True)
        if self.weights is not None and len(self.weights) != len(self.estimators):
            raise ValueError(
                f"got {len(self.weights)} weights for {len(self.estimators)} estimators"
            )
        kept = [(name, est) for name, est in zip(names, estimators, strict=True) if est != "drop"]
        self.branch_groups_ = self._branch_groups([name for name, _ in kept])
        present = self._presence(X)
        everyone = np.arange(len(y))
        train = [
            trainable_rows(everyone, present[:, g], y, n_classes) for g in range(present.shape[1])
        ]
        self.usable_ = np.array([rows is not None for rows in train], dtype=bool)
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_once)(
                clone(est),
                X,
                y,
                None if g < 0 or train[g] is None else rows_or_all(train[g], len(y)),
                sw,
            )
            for (_, est), g in zip(kept, self.branch_groups_, strict=True)
        )
        set_named_estimators(self)
        return self

    def _vote_weights(self, n_branches: int) -> np.ndarray:
        """Each kept branch's voting weight (ones without ``weights``)."""
        if self.weights is None:
            return np.ones(n_branches)
        kept = [
            w for (_, est), w in zip(self.estimators, self.weights, strict=True) if est != "drop"
        ]
        return np.asarray(kept, dtype=np.float64)

    def _available_mean(self, outputs: np.ndarray, X, fallback) -> np.ndarray:
        """Weighted mean over axis 0 (branches) of ``outputs`` (n_branches, n_samples, ...)
        over the branches each row has; ``fallback`` for rows with none."""
        mask = self._branch_presence(X).T.astype(np.float64)
        weights = self._vote_weights(len(outputs))
        mask = (mask * weights[:, None]).reshape(mask.shape + (1,) * (outputs.ndim - 2))
        total = mask.sum(axis=0)
        mean = (outputs * mask).sum(axis=0) / np.where(total > 0, total, 1.0)
        mean[total.reshape(len(total), -1)[:, 0] == 0] = fallback
        return mean


class AvailableVotingClassifier(_AvailableVoting, VotingClassifier):
    """Soft vote over the branches each patient has (late fusion with missing modalities).

    Each branch is fitted only on the training rows where its group is present; a patient's
    probability is the (weighted) mean over the branches whose group it has. A patient with no
    group gets the training prevalence ``class_prior_``. With every group present everywhere,
    this is exactly :class:`~sklearn.ensemble.VotingClassifier` with ``voting="soft"``.

    Parameters
    ----------
    estimators : list of (str, estimator)
        Branches named ``branch_name(group, learner)`` (see :func:`branch_name`).
    groups : dict of str to list of str, optional
        Group name → its columns: decides which rows have which group. None: every branch is
        always present (plain soft voting).
    voting : {"soft"}, default="soft"
        Only soft voting is supported.
    pool : {"mean", "evidence"}, default="mean"
        ``"mean"``: the mean probability over the branches a row has (soft voting).
        ``"evidence"``: the mean within each group, then the groups' evidence added: ``log
        p_k = log prior_k + sum_g (log p_gk - log prior_k)`` over the groups a row has,
        normalised (the naive-Bayes pool of groups that are independent given the class; a
        row's absent group adds nothing). With one group, or ``groups=None``, both are the
        same. Not a stacking combiner: radiomics groups are not independent, and the pool is
        over-confident (calibration slope 0.28-0.83 where the mean's is 0.86-2.7,
        ``benchmarks/evidence_pool.py``); kept to reproduce that finding.
    weights, n_jobs, flatten_transform, verbose
        As in :class:`~sklearn.ensemble.VotingClassifier`.

    Attributes
    ----------
    estimators_, named_estimators_, le_, classes_
        As in :class:`~sklearn.ensemble.VotingClassifier`.
    branch_groups_ : ndarray of shape (n_branches,)
        Index of each fitted branch's group in ``groups``.
    usable_ : ndarray of shape (n_groups,) of bool
        Groups whose training rows held both classes. An unusable group's branch is fitted on
        all rows (imputed, the historical behaviour) but never counted as present.
    class_prior_ : ndarray of shape (n_classes,)
        Training class frequencies, the prediction for a patient without any usable group.
    """

    _parameter_constraints: dict = {
        **VotingClassifier._parameter_constraints,
        "groups": [dict, None],
        "voting": [StrOptions({"soft"})],
        "pool": [StrOptions({"mean", "evidence"})],
    }

    def __init__(
        self,
        estimators,
        *,
        groups=None,
        voting="soft",
        pool="mean",
        weights=None,
        n_jobs=None,
        flatten_transform=True,
        verbose=False,
    ):
        super().__init__(
            estimators,
            voting=voting,
            weights=weights,
            n_jobs=n_jobs,
            flatten_transform=flatten_transform,
            verbose=verbose,
        )
        self.groups = groups
        self.pool = pool

    def fit(self, X, y, sample_weight=None):
        """Fit each branch on the rows having its group."""
        validate_params(self)
        X, y = self._fit_inputs(X, y, regression=False)
        check_classification_targets(y)
        self.le_ = LabelEncoder().fit(y)
        self.classes_ = self.le_.classes_
        y = self.le_.transform(y)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.class_prior_ = np.bincount(y, weights=sw, minlength=len(self.classes_))
        self.class_prior_ = self.class_prior_ / self.class_prior_.sum()
        return self._fit_branches(X, y, sw, len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities pooled (``pool``) over the branches each row has; the training
        prevalence for a row without any."""
        check_is_fitted(self)
        X = self._table(X)
        probas = self._branch_probas(X)  # (n_branches, n_samples, n_classes)
        if self.pool == "mean":
            return self._available_mean(probas, X, self.class_prior_)
        return self._evidence(probas, X)

    def _branch_probas(self, X) -> np.ndarray:
        """Every fitted branch's class probabilities, shape (n_branches, n_samples, n_classes)."""
        return np.asarray([est.predict_proba(X) for est in self.estimators_])

    def predict_proba_without_groups(self, X) -> dict[str, np.ndarray]:
        """P(class 1) of each row without each group's branches, by group (two classes).

        The mean over the other branches a row has (weights as in the model); the training
        prevalence when none is left. Equal to refitting the model without the group, since
        every branch is fitted on its own: how much late fusion leans on each group.
        """
        check_is_fitted(self)
        X = self._table(X)
        probas = self._branch_probas(X)[:, :, 1]  # (n_branches, n_rows)
        mask = self._branch_presence(X).T.astype(np.float64)
        mask = mask * self._vote_weights(len(probas))[:, None]
        branch_groups = np.asarray(self.branch_groups_)
        out = {}
        for g, group in enumerate(self.groups):
            keep = mask * (branch_groups != g)[:, None]
            total = keep.sum(axis=0)
            p = (probas * keep).sum(axis=0) / np.where(total > 0, total, 1.0)
            p[total == 0] = self.class_prior_[1]
            out[group] = p
        return out

    def _evidence(self, probas: np.ndarray, X) -> np.ndarray:
        """``pool="evidence"``: each group's mean probability, its log-ratio to the prior
        summed over the groups a row has, normalised."""
        presence = self._branch_presence(X)  # (n_samples, n_branches)
        weights = self._vote_weights(len(probas))
        log_prior = np.log(self.class_prior_)
        logits = np.broadcast_to(log_prior, probas.shape[1:]).copy()
        for group in np.unique(self.branch_groups_):
            members = self.branch_groups_ == group
            mask = presence[:, members] * weights[members]  # (n_samples, members)
            total = mask.sum(axis=1)
            has = total > 0
            mean = np.einsum("nb,bnk->nk", mask, probas[members])[has] / total[has, None]
            logits[has] += np.log(np.clip(mean, LOGIT_CLIP, None)) - log_prior
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)


class AvailableVotingRegressor(_AvailableVoting, VotingRegressor):
    """Mean prediction over the branches each patient has (late fusion of regressors).

    As :class:`AvailableVotingClassifier` for continuous targets: each branch is fitted on the
    training rows having its group (a group whose rows hold fewer than two distinct values is
    fitted on all rows, imputed, and never counted as present); a patient's prediction is the
    (weighted) mean of the branches it has, the training mean ``y_mean_`` when none.
    """

    _parameter_constraints: dict = {
        **VotingRegressor._parameter_constraints,
        "groups": [dict, None],
    }

    def __init__(self, estimators, *, groups=None, weights=None, n_jobs=None, verbose=False):
        super().__init__(estimators, weights=weights, n_jobs=n_jobs, verbose=verbose)
        self.groups = groups

    def fit(self, X, y, sample_weight=None):
        """Fit each branch on the rows having its group."""
        validate_params(self)
        X, y = self._fit_inputs(X, y, regression=True)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.y_mean_ = float(np.average(y, weights=sw))
        return self._fit_branches(X, y, sw, None)

    def predict(self, X):
        """Weighted mean prediction over the branches each row has; the training mean if none."""
        check_is_fitted(self)
        X = self._table(X)
        predictions = np.asarray([est.predict(X) for est in self.estimators_])  # (branches, n)
        return self._available_mean(predictions, X, self.y_mean_)
