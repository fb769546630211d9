"""Combiners: how late fusion and stacking turn branch predictions into one.

A *combiner* turns branch predictions into one. Late fusion is one branch per group with
``learner``, combined by ``"mean"``; stacking is one branch per group x learner, combined by
the ``combiner`` parameter of :class:`~radfusion.pipeline.fusion.FusionClassifier` (and
:func:`~radfusion.pipeline.fusion.build_model`). So ``combiner="mean"`` makes stacking the
soft vote of every group x learner, and late fusion is the special case "one learner, mean";
``benchmarks/combiners.py`` found the mean best for late fusion's branches too. The combiners:

- ``"mean"``: equal weights over the branches a patient has (soft voting); nothing is learned.
- ``"convex"``: non-negative weights summing to one, fitted on the branches' inner out-of-fold
  predictions by minimising the log-loss (classification) or squared error (regression) of the
  weighted mean: the super learner. The training base rate (class frequencies, or the mean
  outcome) is one more member of the mix, so when no branch carries signal the weight moves to
  it and the predictions shrink toward the base rate.
- ``"shrunk"``: the convex weights shrunk toward equal weights, ``(1 - a) w_convex + a w_equal``;
  the amount ``a`` (0, 0.1, ..., 1) minimises the loss of a K-fold CV over the combiner's own
  training rows (the out-of-fold predictions), ties going to more shrinkage.
- ``"platt"`` (the default for classes): the mean, recalibrated: equal weights over the
  branches a patient has, then a Platt map ``expit(a + b logit(mean))``, fitted by maximum
  likelihood on the mean of the branches' inner out-of-fold probabilities of the training
  rows. The mean of many branches is under-confident (its spread shrinks with every group
  that says less than the strongest); the map stretches it back. ``b >= min_slope``, 1 by
  default: the map only undoes that compression, and where the inner CV sees no signal it is
  the mean, recentred. (With ``min_slope=0`` the slope may collapse toward 0 and every
  prediction to the training base rate; each outer fold then gets its own base rate, which
  pooled across folds cost 0.012 AUC on the benchmark tables: ``benchmarks/
  calibrated_mean.py``.) Multiclass: the same map on the log of each class's mean
  probability, ``softmax(a_k + b log mean_k)`` (one shared slope, i.e. temperature scaling
  ``1/b``, and a free offset per class), which for two classes is exactly Platt's. Not
  defined for regression (nothing to calibrate): refused.
- ``"best"``: the discrete super learner: the single member (a branch, or the base rate) with
  the lowest out-of-fold loss; a patient lacking it gets the next-ranked member it has.
- ``"logistic"``: the learned meta-learner of radfusion <= 0.2
  (:class:`~radfusion.pipeline.fusion.NonNegativeLogisticRegression` for binary outcomes, a
  multinomial ``LogisticRegression`` for multiclass ones, non-negative least squares for
  regression); built by :func:`~radfusion.pipeline.fusion.build_model`, not here.

:class:`CombinerClassifier` and :class:`CombinerRegressor` implement the others as the
final estimator of :class:`~radfusion.pipeline.fusion.AvailableStackingClassifier` /
``Regressor`` (``build_model`` builds ``"mean"`` as a soft vote, without inner CV). Their input
is one block of columns per branch (P(class 1) of a binary classifier, every class's
probability of a multiclass one, the prediction of a regressor), NaN where the patient lacks
the branch's group, then ``n_free`` covariates (the stacking model's missingness indicators),
which they ignore: a weighted mean re-normalised over the branches a patient has needs no
indicator.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from radfusion.features.errors import InputError, Problem

from ..splits import AdaptiveStratifiedKFold
from ..targets import Task, get_task
from ._inputs import class_codes

__all__ = [
    "COMBINERS",
    "SHRINKAGE_GRID",
    "CombinerClassifier",
    "CombinerRegressor",
    "resolve_combiner",
]

#: Accepted ``combiner`` values, simplest first (the order ties are broken in).
COMBINERS = ("mean", "platt", "best", "convex", "shrunk", "logistic")
#: Combiners that only make sense for class probabilities (refused for regression).
CLASSIFICATION_ONLY = ("platt",)
#: Amounts of shrinkage toward equal weights tried by ``"shrunk"``.
SHRINKAGE_GRID = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))

_METHODS = ("mean", "platt", "convex", "shrunk", "best")
_TINY = 1e-12
_CLIP = 1e-15
_LOG_CLIP = 1e-6  # probabilities clipped to [_LOG_CLIP, 1 - _LOG_CLIP] before Platt's log


def resolve_combiner(combiner: str | None, strategy: str, task: str | Task = "binary") -> str:
    """The combiner a late or stacking model uses: late fusion always ``"mean"``; stacking
    ``combiner``, or the task's ``default_combiner`` when None, if the task takes it
    (``Task.combiners``)."""
    if strategy == "late":
        return "mean"
    task = get_task(task)
    chosen = task.default_combiner if combiner is None else combiner
    if chosen in task.combiners:
        return chosen
    if chosen in CLASSIFICATION_ONLY:
        raise InputError(
            f"The {chosen!r} combiner calibrates class probabilities",
            [
                Problem(
                    f"a {task.name} stack has no probabilities: choose another combiner than "
                    f"{chosen!r} (e.g. 'mean')"
                )
            ],
        )
    raise InputError(
        f"The {chosen!r} combiner does not fit a {task.name} target",
        [Problem(f"a {task.name} stack combines with one of {', '.join(task.combiners)}")],
    )


class _Combiner(BaseEstimator):
    """Fit and pooling shared by :class:`CombinerClassifier` and :class:`CombinerRegressor`."""

    def __init__(self, method="convex", *, n_free=0, cv=5, min_slope=1.0, random_state=0):
        self.method = method
        self.n_free = n_free
        self.cv = cv
        self.min_slope = min_slope
        self.random_state = random_state

    # -- inputs
    def _check_params(self, n_columns: int) -> None:
        if self.method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}, got {self.method!r}")
        if not (isinstance(self.n_free, Integral) and 0 <= self.n_free < n_columns):
            raise ValueError(
                f"n_free must be an integer in [0, {n_columns - 1}] (fewer than the "
                f"{n_columns} columns), got {self.n_free!r}"
            )
        if not (isinstance(self.cv, Integral) and self.cv >= 2):
            raise ValueError(f"cv must be an integer >= 2, got {self.cv!r}")
        if not (isinstance(self.min_slope, Real) and 0 <= self.min_slope < np.inf):
            raise ValueError(f"min_slope must be a finite number >= 0, got {self.min_slope!r}")
        if not self._classifies and self.method in CLASSIFICATION_ONLY:
            raise ValueError(
                f"method {self.method!r} calibrates class probabilities; a regressor has none"
            )

    def _members(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Outputs (n, members, width) of the branches then the base rate (NaN set to 0), and
        presence (n, members) as floats; ``width`` as :meth:`_width`."""
        block = X[:, : X.shape[1] - self.n_free]
        width = self._width
        n, columns = block.shape
        if columns % width:
            raise ValueError(
                f"{type(self).__name__}: {columns} branch columns is not a multiple of the "
                f"{width} outputs per branch"
            )
        outputs = self._expand(block.reshape(n, columns // width, width))
        present = ~np.isnan(outputs).any(axis=2)
        outputs = np.where(present[:, :, None], outputs, 0.0)
        base = np.broadcast_to(self._base, (n, 1, outputs.shape[2]))
        return (
            np.concatenate([outputs, base], axis=1),
            np.column_stack([present, np.ones(n, dtype=bool)]).astype(np.float64),
        )

    # -- pooling and losses
    def _pool(self, weights, outputs, present):
        """Weighted mean over the members each row has, and its denominator."""
        wm = present * weights
        den = wm.sum(axis=1)
        num = np.einsum("nm,nmc->nc", wm, outputs)
        ok = den > _TINY
        pred = np.where(ok[:, None], num / np.where(ok, den, 1.0)[:, None], self._base)
        return pred, den, ok

    def _loss_grad(self, weights, outputs, present, target):
        pred, den, ok = self._pool(weights, outputs, present)
        n = len(target)
        if self._classifies:
            rows = np.arange(n)
            chosen = np.clip(pred[rows, target], _CLIP, None)
            loss = -np.log(chosen).sum() / n
            member = outputs[rows, :, target]  # (n, members)
            coef = np.where(ok, -1.0 / (np.where(ok, den, 1.0) * chosen), 0.0)
            grad = (present * (member - chosen[:, None]) * coef[:, None]).sum(axis=0) / n
        else:
            resid = pred[:, 0] - target
            scale = self._scale
            loss = (resid @ resid) / (n * scale)
            coef = np.where(ok, 2.0 * resid / np.where(ok, den, 1.0), 0.0)
            grad = (present * (outputs[:, :, 0] - pred[:, :1]) * coef[:, None]).sum(axis=0)
            grad = grad / (n * scale)
        return loss, grad

    def _row_losses(self, weights, outputs, present, target) -> np.ndarray:
        pred, _, _ = self._pool(weights, outputs, present)
        if self._classifies:
            return -np.log(np.clip(pred[np.arange(len(target)), target], _CLIP, None))
        return (pred[:, 0] - target) ** 2

    def _convex(self, outputs, present, target) -> np.ndarray:
        """Simplex weights minimising the pooled loss (SLSQP from equal weights)."""
        m = outputs.shape[1]
        result = minimize(
            self._loss_grad,
            np.full(m, 1.0 / m),
            args=(outputs, present, target),
            jac=True,
            method="SLSQP",
            bounds=[(0.0, 1.0)] * m,
            constraints=[
                {"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(m)}
            ],
            options={"maxiter": 500, "ftol": 1e-10},
        )
        if not result.success:
            warnings.warn(
                f"{type(self).__name__}(method={self.method!r}) did not converge: {result.message}",
                ConvergenceWarning,
                stacklevel=3,
            )
        weights = np.clip(result.x, 0.0, None)
        return weights / weights.sum() if weights.sum() > 0 else np.full(m, 1.0 / m)

    def _equal(self, m: int) -> np.ndarray:
        weights = np.zeros(m)
        weights[:-1] = 1.0 / (m - 1) if m > 1 else 0.0
        if m == 1:
            weights[0] = 1.0
        return weights

    def _splits(self, target, n):
        """Folds of the shrinkage CV, or None when the rows cannot be split."""
        if self._classifies:
            counts = np.bincount(target)
            if counts[counts > 0].min() < 2:
                return None
            splitter = AdaptiveStratifiedKFold(
                self.cv, shuffle=True, random_state=self.random_state
            )
            return list(splitter.split(np.zeros(n), target))
        if n < 4:
            return None
        splitter = KFold(min(self.cv, n // 2), shuffle=True, random_state=self.random_state)
        return list(splitter.split(np.zeros(n)))

    def _fit_weights(self, X, target) -> None:
        outputs, present = self._members(X)
        n, m = present.shape
        self.n_branches_ = m - 1
        equal = self._equal(m)
        if self.method == "mean":
            weights = equal
        elif self.method == "platt":
            weights = equal
            self._fit_platt(*self._pool(weights, outputs, present)[::2], target)
        elif self.method == "best":
            losses = np.array(
                [
                    self._row_losses(np.eye(m)[j], outputs, present, target)[
                        present[:, j] > 0
                    ].mean()
                    if present[:, j].any()
                    else np.inf
                    for j in range(m)
                ]
            )
            self.member_losses_ = losses
            self.ranking_ = np.argsort(losses, kind="stable")
            weights = np.eye(m)[self.ranking_[0]]
        else:
            weights = self._convex(outputs, present, target)
            if self.method == "shrunk":
                self.shrinkage_ = self._choose_shrinkage(outputs, present, target, equal)
                weights = (1.0 - self.shrinkage_) * weights + self.shrinkage_ * equal
        self.weights_ = weights[:-1].copy()
        self.base_weight_ = float(weights[-1])

    # -- Platt map of the mean ("platt")
    def _platt_logits(self, slope, intercept, pooled) -> np.ndarray:
        return intercept + slope * np.log(np.clip(pooled, _LOG_CLIP, 1.0 - _LOG_CLIP))

    def _fit_platt(self, pooled, ok, target) -> None:
        """Slope ``b >= min_slope`` and class offsets ``a`` (``a[0] = 0``) of ``softmax(a + b log
        mean)``, by maximum likelihood on the rows having a branch (L-BFGS-B from the identity
        map, b = 1, a = log-ratio correction 0)."""
        k = len(self.classes_)
        logs = np.log(np.clip(pooled[ok], _LOG_CLIP, 1.0 - _LOG_CLIP))
        onehot = np.eye(k)[target[ok]]
        n = max(len(logs), 1)

        def loss_grad(theta):
            slope, intercept = theta[0], np.concatenate([[0.0], theta[1:]])
            z = intercept + slope * logs
            z -= z.max(axis=1, keepdims=True)
            log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            resid = np.exp(log_p) - onehot  # d loss / d z, per row and class
            loss = -(onehot * log_p).sum() / n
            grad = np.concatenate([[(resid * logs).sum()], resid[:, 1:].sum(axis=0)]) / n
            return loss, grad

        result = minimize(
            loss_grad,
            np.concatenate([[max(1.0, self.min_slope)], np.zeros(k - 1)]),
            jac=True,
            method="L-BFGS-B",
            bounds=[(self.min_slope, None)] + [(None, None)] * (k - 1),
            options={"maxiter": 1000, "ftol": 1e-14, "gtol": 1e-9},
        )
        if not result.success:
            warnings.warn(
                f"{type(self).__name__}(method='platt') did not converge: {result.message}",
                ConvergenceWarning,
                stacklevel=4,
            )
        self.slope_ = float(result.x[0])
        self.intercept_ = np.concatenate([[0.0], result.x[1:]])

    def _choose_shrinkage(self, outputs, present, target, equal) -> float:
        splits = self._splits(target, len(target))
        if splits is None:
            return 1.0
        totals = np.zeros(len(SHRINKAGE_GRID))
        for train, test in splits:
            convex = self._convex(outputs[train], present[train], target[train])
            for k, amount in enumerate(SHRINKAGE_GRID):
                weights = (1.0 - amount) * convex + amount * equal
                totals[k] += self._row_losses(
                    weights, outputs[test], present[test], target[test]
                ).sum()
        best = totals.min()
        ties = np.flatnonzero(totals <= best + 1e-9 * max(abs(best), 1.0))
        return float(SHRINKAGE_GRID[ties[-1]])

    def _combine(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        self._check_inputs(X)
        outputs, present = self._members(X)
        if self.method == "best":
            order = self.ranking_
            first = np.argmax(present[:, order] > 0, axis=1)  # base rate always present
            chosen = order[first]
            return outputs[np.arange(len(X)), chosen]
        weights = np.append(self.weights_, self.base_weight_)
        pooled, _, ok = self._pool(weights, outputs, present)
        if self.method != "platt":
            return pooled
        z = self._platt_logits(self.slope_, self.intercept_, pooled)
        z -= z.max(axis=1, keepdims=True)
        mapped = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return np.where(ok[:, None], mapped, self._base)

    def _check_inputs(self, X) -> None:
        pass

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class CombinerClassifier(ClassifierMixin, _Combiner):
    """Combine branch probabilities by weights over the branches each patient has.

    The final estimator of a stacking classifier built with ``combiner`` ``"platt"``,
    ``"convex"``, ``"shrunk"`` or ``"best"`` (see the module docstring). A patient's
    probabilities are the weighted mean of the class probabilities of the branches it has
    (NaN inputs) and of the training class frequencies, with the weights re-normalised over
    those members; ``"platt"`` then maps that mean through its fitted Platt map. Fitted on
    out-of-fold probabilities of the training rows only.

    Parameters
    ----------
    method : {"mean", "platt", "convex", "shrunk", "best"}, default="convex"
        How the weights are chosen.
    n_free : int, default=0
        The last ``n_free`` columns are covariates (missingness indicators); ignored.
    cv : int, default=5
        Folds of the shrinkage CV (``"shrunk"``), stratified, fewer when a class is small.
    min_slope : float, default=1.0
        ``"platt"`` only: the lower bound of the map's slope ``b`` (1: the map can only
        stretch the mean; 0: it may shrink it to the training base rate).
    random_state : int or None, default=0
        Seed of those folds.

    Attributes
    ----------
    weights_ : ndarray of shape (n_branches,)
        Weight of each branch (non-negative; with ``base_weight_`` they sum to one).
    base_weight_ : float
        Weight of the training class frequencies (0 for ``"mean"``).
    shrinkage_ : float
        ``"shrunk"`` only: the amount of shrinkage toward equal weights chosen by CV.
    slope_, intercept_ : float, ndarray of shape (n_classes,)
        ``"platt"`` only: the map ``softmax(intercept_ + slope_ * log(mean))`` (binary:
        ``expit(a + slope_ * logit(mean))`` with ``a = intercept_[1]``); ``slope_ >=
        min_slope``.
    ranking_ : ndarray
        ``"best"`` only: members (branches, then the base rate as index ``n_branches_``) by
        increasing out-of-fold loss; ``member_losses_`` holds the losses.
    class_prior_ : ndarray of shape (n_classes,)
    classes_, n_features_in_, n_branches_
    """

    _classifies = True

    def fit(self, X, y):
        """Fit the weights on out-of-fold probabilities ``X`` (NaN: branch absent) and ``y``."""
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        self.classes_, target = class_codes(y, type(self).__name__)
        self._check_params(X.shape[1])
        self._check_inputs(X)
        self.class_prior_ = np.bincount(target, minlength=len(self.classes_)) / len(target)
        self._fit_weights(X, target)
        return self

    @property
    def _width(self) -> int:
        return 1 if len(self.classes_) == 2 else len(self.classes_)

    @property
    def _base(self) -> np.ndarray:
        return self.class_prior_

    def _expand(self, block: np.ndarray) -> np.ndarray:
        """Binary P(class 1) → both classes' probabilities."""
        return np.concatenate([1.0 - block, block], axis=2) if block.shape[2] == 1 else block

    def _check_inputs(self, X) -> None:
        block = X[:, : X.shape[1] - self.n_free]
        finite = block[~np.isnan(block)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise ValueError(
                f"{type(self).__name__} combines probabilities in [0, 1] (stacked predict_proba "
                f"outputs); got values in [{finite.min():.3g}, {finite.max():.3g}]"
            )

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        return self._combine(X)

    def predict(self, X) -> np.ndarray:
        """The most probable class."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CombinerRegressor(RegressorMixin, _Combiner):
    """Combine branch predictions by weights over the branches each patient has.

    As :class:`CombinerClassifier` for continuous outcomes: the members are the branches'
    (out-of-fold) predictions and the training mean ``y_mean_``; convex weights minimise the
    squared error, ``"best"`` picks the member with the lowest out-of-fold squared error.
    Parameters and attributes as :class:`CombinerClassifier` (``y_mean_`` in place of
    ``class_prior_``); ``"platt"`` is refused (a regressor has no probabilities).
    """

    _classifies = False
    _width = 1

    def fit(self, X, y):
        """Fit the weights on out-of-fold predictions ``X`` (NaN: branch absent) and ``y``."""
        X, y = validate_data(
            self, X, y, dtype=np.float64, ensure_all_finite="allow-nan", y_numeric=True
        )
        y = column_or_1d(y).astype(np.float64)
        self._check_params(X.shape[1])
        self.y_mean_ = float(y.mean())
        variance = float(y.var())
        self._scale = variance if variance > 0 else 1.0
        self._fit_weights(X, y)
        return self

    @property
    def _base(self) -> np.ndarray:
        return np.array([self.y_mean_])

    @staticmethod
    def _expand(block: np.ndarray) -> np.ndarray:
        return block

    def predict(self, X) -> np.ndarray:
        """The combined prediction of each row."""
        return self._combine(X)[:, 0]
