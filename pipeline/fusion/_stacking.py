"""Stacking with missing modalities: branches fitted on the rows having their group, combined
on their inner out-of-fold outputs."""

from __future__ import annotations

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import StackingClassifier, StackingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from .._sklearn_compat import (
    StrOptions,
    check_feature_names_in,
    check_sample_weight,
    validate_params,
)
from ..columns import branch_name
from ..shared_fits import fit_once
from ._availability import (
    Availability,
    branch_output,
    chosen_setting,
    fit_predict_rows,
    rows_or_all,
    set_named_estimators,
    trainable_rows,
)
from ._combiners import CombinerClassifier, CombinerRegressor
from ._meta import NonNegativeLogisticRegression

__all__ = ["AvailableStackingClassifier", "AvailableStackingRegressor"]


class _AvailableStacking(Availability):
    """The fit and transform shared by stacking classifiers and regressors with missing
    modalities (see :class:`AvailableStackingClassifier`)."""

    def _stack_inputs(self, X, y, *, regression: bool):
        """The parameters validated (``passthrough`` refused), then :meth:`_fit_inputs`."""
        validate_params(self)
        if self.passthrough:
            raise ValueError(f"{type(self).__name__} does not support passthrough=True")
        return self._fit_inputs(X, y, regression=regression)

    def _fit_stack(self, X, y, sw, n_classes: int | None):
        """Fit branches and meta-learner; ``y`` encoded, ``n_classes`` None for regression."""
        names, clfs = self._checked_branches(typed=n_classes is None)
        kept = [(name, clf) for name, clf in zip(names, clfs, strict=True) if clf != "drop"]
        method = "predict" if n_classes is None else "predict_proba"
        self.stack_method_ = [method] * len(kept)
        self.branch_groups_ = self._branch_groups([name for name, _ in kept])
        present = np.column_stack([self._presence(X), np.ones((len(y), 1), dtype=bool)])
        n, n_groups = len(y), present.shape[1] - 1

        cv = check_cv(self.cv, y=y, classifier=n_classes is not None)
        if hasattr(cv, "random_state") and cv.random_state is None:
            cv.random_state = np.random.RandomState()
        splits = [(np.arange(n), None)] + list(cv.split(X, y))
        # per split and group (last column: always present): training rows, scored test rows
        train = [
            [trainable_rows(rows, present[:, g], y, n_classes) for g in range(n_groups + 1)]
            for rows, _ in splits
        ]
        # First every branch on all its training rows (a tuned branch runs its search here),
        # then the inner folds: a tuned branch reuses its search's chosen setting there
        # instead of searching again in every inner fold.
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_once)(
                clone(clf),
                X,
                y,
                *self._split_rows(train[0][g], splits[0], present[:, g], n),
                sw,
            )
            for (_, clf), g in zip(kept, self.branch_groups_, strict=True)
        )
        inner = [
            chosen_setting(fitted, clf)
            for fitted, (_, clf) in zip(self.estimators_, kept, strict=True)
        ]
        tasks = [(b, s) for b in range(len(kept)) for s in range(1, len(splits))]
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_predict_rows)(
                clone(inner[b]),
                X,
                y,
                *self._split_rows(train[s][g], splits[s], present[:, g], n),
                sw,
                method,
            )
            for b, s in tasks
            for g in [self.branch_groups_[b]]
        )
        self.usable_ = np.array([rows is not None for rows in train[0][:n_groups]], dtype=bool)

        width = 1 if n_classes is None or n_classes == 2 else n_classes
        oof = np.full((n, len(kept), width), np.nan)
        scored = np.zeros((n, n_groups + 1), dtype=bool)
        for (b, s), p in zip(tasks, results, strict=True):
            g = self.branch_groups_[b]
            if train[s][g] is not None and p is not None:
                test = splits[s][1][present[splits[s][1], g]]
                oof[test, b] = p
                scored[test, g] = True
        missing = ~scored[:, :n_groups]
        indicators = np.flatnonzero(missing.any(axis=0))
        self.indicator_groups_ = [list(self.groups)[g] for g in indicators]
        self.neutral_ = float(np.average(y, weights=sw)) if n_classes is None else 1.0 / n_classes
        # A combiner re-normalises its weights over the branches a row has (NaN: absent);
        # another meta-learner sees the neutral value there.
        combiner = isinstance(self.final_estimator_, (CombinerClassifier, CombinerRegressor))
        self.absent_value_ = np.nan if combiner else self.neutral_
        X_meta = np.hstack(
            [
                np.where(np.isnan(oof), self.absent_value_, oof).reshape(n, -1),
                missing[:, indicators].astype(np.float64),
            ]
        )
        if "n_free" in self.final_estimator_.get_params():
            self.final_estimator_.set_params(n_free=len(indicators))
        params = {} if sw is None else {"sample_weight": sw}
        self.final_estimator_.fit(X_meta, y, **params)

        set_named_estimators(self)
        return self

    @staticmethod
    def _split_rows(rows, split, present, n):
        """(train, test) rows of one fit task: the full fit (test None) or an inner fold."""
        train_all, test = split
        train = train_all if rows is None else rows  # unusable: imputed fit, not scored
        train = rows_or_all(train, n) if test is None else train
        if test is None:
            return (train,)
        return train, (test[present[test]] if rows is not None else test[:0])

    def _meta_inputs(self, X):
        """The meta-learner's inputs: each branch's output (``absent_value_`` where the row
        lacks its group: neutral, or NaN for a combiner), then the missingness indicators.

        Parameters
        ----------
        X : DataFrame of shape (n_samples, n_features)
            The table (with its groups' columns).

        Returns
        -------
        ndarray of shape (n_samples, n_outputs)
            Named by :meth:`get_feature_names_out`.
        """
        check_is_fitted(self)
        X = self._table(X)
        has = self._branch_presence(X)
        outputs = np.stack(
            [
                branch_output(est, X, method)
                for est, method in zip(self.estimators_, self.stack_method_, strict=True)
            ],
            axis=1,
        )
        fill = getattr(self, "absent_value_", self.neutral_)
        outputs = np.where(has[:, :, None], outputs, fill).reshape(len(outputs), -1)
        columns = [list(self.groups).index(g) for g in self.indicator_groups_]
        absent = ~(self._presence(X) & self.usable_)[:, columns]
        return np.hstack([outputs, absent.astype(np.float64)])

    def get_feature_names_out(self, input_features=None):
        """Branch names as scikit-learn's stacking names them (``{class}_{branch}``, with the
        class index when a branch gives several columns), then ``{class}_missing_{group}``."""
        check_is_fitted(self)
        check_feature_names_in(self, input_features, generate_names=False)
        prefix = type(self).__name__.lower()
        classes = getattr(self, "classes_", ())
        width = len(classes) if len(classes) > 2 else 1
        names = []
        for name, branch in self.estimators:
            if branch != "drop":
                names += (
                    [f"{prefix}_{name}{k}" for k in range(width)]
                    if width > 1
                    else [f"{prefix}_{name}"]
                )
        extra = [f"{prefix}_missing_{branch_name(g)}" for g in self.indicator_groups_]
        return np.asarray([*names, *extra], dtype=object)


class AvailableStackingClassifier(_AvailableStacking, StackingClassifier):
    """Stacking over the branches each patient has (stacking with missing modalities).

    Branches stacked by ``predict_proba``. Each branch is fitted, in every inner fold and on
    the whole training set, only on the rows where its group is present. The meta-learner's
    inputs are, per branch, its strictly out-of-fold probability of class 1 where the patient
    has the group and a neutral 0.5 (log-odds 0: no contribution) where not (multiclass: every
    class's probability, neutral 1/K), then
    one *missingness indicator* per group (1 = absent) for the groups absent in at least one
    training row. With the default meta-learner the branch weights stay non-negative, while the
    indicators' weights are free-signed (``n_free``): an indicator is a plain covariate, not a
    prediction, so the out-of-fold anti-correlation artefact that motivates the constraint does
    not apply, and missingness may legitimately raise or lower the risk (e.g. MR ordered only
    for suspicious cases). A patient with no usable group gets ``class_prior_``.

    A tuned branch (a fitted search such as :func:`radfusion.pipeline.fusion.tuned_branch`) searches
    once, on the whole training set; its inner-fold fits reuse the chosen setting
    (``best_estimator_``, unfitted) instead of searching again in every inner fold, so a tuned stack
    costs about its branches' searches plus ``cv`` plain fits each. The setting was chosen on rows
    that include the inner test rows, a mild optimism of the meta-learner's inputs only; the rows
    the whole stack is later scored on are never seen. With every
    group present everywhere this is exactly :class:`~sklearn.ensemble.StackingClassifier`.

    Parameters
    ----------
    estimators : list of (str, estimator)
        Branches named ``branch_name(group, learner)`` (see :func:`branch_name`).
    final_estimator : classifier, default=None
        Meta-learner (default :class:`NonNegativeLogisticRegression` for binary targets,
        ``LogisticRegression`` for multiclass ones). When it has an
        ``n_free`` parameter it is set to the number of indicators.
    groups : dict of str to list of str, optional
        Group name → its columns. None: every branch is always present.
    cv, n_jobs, verbose
        As in :class:`~sklearn.ensemble.StackingClassifier` (``stack_method`` must resolve to
        ``predict_proba`` and ``passthrough`` must be False).

    Attributes
    ----------
    estimators_, named_estimators_, final_estimator_, classes_, stack_method_
        As in :class:`~sklearn.ensemble.StackingClassifier`.
    branch_groups_, usable_, class_prior_
        As in :class:`AvailableVotingClassifier`.
    indicator_groups_ : list of str
        Groups with a missingness indicator (absent in some training rows).
    """

    _parameter_constraints: dict = {
        **StackingClassifier._parameter_constraints,
        "groups": [dict, None],
        "stack_method": [StrOptions({"auto", "predict_proba"})],
    }

    def __init__(
        self,
        estimators,
        final_estimator=None,
        *,
        groups=None,
        cv=None,
        stack_method="auto",
        n_jobs=None,
        passthrough=False,
        verbose=0,
    ):
        super().__init__(
            estimators,
            final_estimator,
            cv=cv,
            stack_method=stack_method,
            n_jobs=n_jobs,
            passthrough=passthrough,
            verbose=verbose,
        )
        self.groups = groups

    def fit(self, X, y, sample_weight=None):
        """Fit the branches on the rows having their group, then the meta-learner on their
        out-of-fold probabilities and the missingness indicators."""
        X, y = self._stack_inputs(X, y, regression=False)
        check_classification_targets(y)
        two_classes = len(np.unique(y)) == 2
        default = (
            NonNegativeLogisticRegression() if two_classes else LogisticRegression(max_iter=1000)
        )
        self.final_estimator_ = clone(
            default if self.final_estimator is None else self.final_estimator
        )
        encoder = LabelEncoder().fit(y)
        self.classes_ = encoder.classes_
        y = encoder.transform(y)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.class_prior_ = np.bincount(y, weights=sw, minlength=len(self.classes_)) / (
            len(y) if sw is None else sw.sum()
        )
        _, clfs = self._checked_branches(typed=False)
        if not all(hasattr(c, "predict_proba") for c in clfs if c != "drop"):
            raise ValueError(f"{type(self).__name__} stacks predict_proba only")
        return self._fit_stack(X, y, sw, len(self.classes_))

    def predict_proba(self, X):
        """Meta-learner probabilities; the training prevalence for rows without any group."""
        check_is_fitted(self)
        X = self._table(X)
        proba = self.final_estimator_.predict_proba(self._meta_inputs(X))
        if self.groups is not None:
            none = ~self._branch_presence(X).any(axis=1)
            proba[none] = self.class_prior_
        return proba

    def predict(self, X):
        """The meta-learner's class for each row."""
        check_is_fitted(self)
        return self.classes_[np.asarray(self.final_estimator_.predict(self._meta_inputs(X)))]

    def transform(self, X):
        """The meta-learner's inputs (see :meth:`get_feature_names_out`)."""
        return self._meta_inputs(X)


class AvailableStackingRegressor(_AvailableStacking, StackingRegressor):
    """Stacking regression over the branches each patient has (continuous targets).

    As :class:`AvailableStackingClassifier`, with branches stacked by ``predict``: the
    meta-learner (default ``LinearRegression(positive=True)``, Breiman's non-negative stacked
    regression) sees each branch's out-of-fold prediction where the patient has the group and
    the training mean of ``y`` where not, then the missingness indicators. A patient without
    any usable group gets the training mean ``y_mean_``.
    """

    _parameter_constraints: dict = {
        **StackingRegressor._parameter_constraints,
        "groups": [dict, None],
    }

    def __init__(
        self,
        estimators,
        final_estimator=None,
        *,
        groups=None,
        cv=None,
        n_jobs=None,
        passthrough=False,
        verbose=0,
    ):
        super().__init__(
            estimators,
            final_estimator,
            cv=cv,
            n_jobs=n_jobs,
            passthrough=passthrough,
            verbose=verbose,
        )
        self.groups = groups

    def fit(self, X, y, sample_weight=None):
        """Fit the branches on the rows having their group, then the meta-learner on their
        out-of-fold predictions and the missingness indicators."""
        X, y = self._stack_inputs(X, y, regression=True)
        self.final_estimator_ = clone(
            LinearRegression(positive=True)
            if self.final_estimator is None
            else self.final_estimator
        )
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.y_mean_ = float(np.average(y, weights=sw))
        return self._fit_stack(X, y, sw, None)

    def predict(self, X, **predict_params):
        """Meta-learner predictions; the training mean for rows without any group."""
        check_is_fitted(self)
        X = self._table(X)
        prediction = np.asarray(
            self.final_estimator_.predict(self._meta_inputs(X), **predict_params), dtype=np.float64
        )
        if self.groups is not None:
            prediction[~self._branch_presence(X).any(axis=1)] = self.y_mean_
        return prediction

    def transform(self, X):
        """The meta-learner's inputs (see :meth:`get_feature_names_out`)."""
        return self._meta_inputs(X)
