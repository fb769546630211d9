"""Shared-space fusion: every modality is mapped into one common latent space Z.

A patient's position in Z is the mean of the maps of the modalities (groups) it has, and a
classifier predicts the label from Z, so a patient missing a modality is still scored through the
others. See :class:`SharedSpaceClassifier`.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, TransformerMixin, clone
from sklearn.cross_decomposition import PLSRegression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted

from ._branch import make_branch

BRANCH_OPTIONS = (
    "harmonize",
    "harmonize_columns",
    "harmonize_unseen",
    "correlation_threshold",
    "select_k",
    "select_method",
    "icc_table",
    "icc_threshold",
)
"""The :func:`make_branch` options the shared space applies per group (``branch_options``)."""

DEFAULT_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
"""Ridge penalties tried (leave-one-out, per latent component) for each modality's map."""


class _SharedSpace(TransformerMixin, BaseEstimator):
    """The shared space Z and the per-group maps into it; see :class:`SharedSpaceClassifier`."""

    def _preprocessor(self, group: str, cols: list[str]) -> Pipeline:
        """A group's unfitted preprocessing: impute → standardise, or with ``branch_options``
        the steps of a fusion branch before its learner (ComBat, impute, drop constants,
        correlation filter, top-k selection, standardise; see :func:`make_branch`)."""
        if not self.branch_options:
            return make_pipeline(
                SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
            )
        branch = make_branch(cols, "lr", self.random_state, **self.branch_options)
        return Pipeline(branch.steps[:-1])

    def _group_input(self, X, rows, cols):
        """What a group's preprocessor reads: the frame (branch options select by name, and
        ComBat needs the site column) or the group's columns as floats."""
        if self.branch_options:
            return X.loc[rows]
        return X.loc[rows, cols].to_numpy(dtype=np.float64)

    def _fit_space(self, X, groups, target: np.ndarray, y=None) -> None:
        """Fit the preprocessors, the PLS defining Z against ``target`` (n, m) and the maps;
        ``y`` is what a selection step scores features against."""
        n = len(X)
        present = self._presence(X, groups)
        y = target[:, 0] if y is None else np.asarray(y)

        self.preprocessors_, blocks, standardised = {}, [], {}
        for j, (group, cols) in enumerate(groups.items()):
            rows = present[:, j]
            block = None
            if rows.sum() >= 2:
                pre = self._preprocessor(group, cols)
                values = pre.fit_transform(self._group_input(X, rows, cols), y[rows])
                self.preprocessors_[group] = pre
                standardised[group] = values
                block = np.zeros((n, values.shape[1]))
                block[rows] = values
            if block is None:
                block = np.zeros((n, len(cols)))
            blocks.append(block / np.sqrt(block.shape[1] or 1))
        self.usable_ = {g: g in self.preprocessors_ for g in groups}
        if not any(self.usable_.values()):
            raise ValueError("no group has at least two training rows with a value")

        joint = np.hstack(blocks)
        limit = min(joint.shape[1], n - 1)
        if self.n_components > limit:
            raise ValueError(
                f"n_components={self.n_components} is too large: at most {limit} (min of the "
                f"number of feature columns, {joint.shape[1]}, and training rows - 1, {n - 1})"
            )
        self.pls_ = PLSRegression(n_components=self.n_components, scale=False)
        self.pls_.fit(joint, target if target.shape[1] > 1 else target[:, 0])
        scores = self.pls_.transform(joint)
        self.z_mean_ = scores.mean(axis=0)
        self.z_scale_ = scores.std(axis=0)
        self.z_scale_[self.z_scale_ == 0] = 1.0
        centred = scores - self.z_mean_
        first = target[:, 0]
        self.z_sign_ = np.where(centred.T @ (first - first.mean()) < 0, -1.0, 1.0)
        target = self.z_sign_ * centred / self.z_scale_

        alphas = np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas, dtype=float)
        self.maps_ = {}
        for j, group in enumerate(groups):
            if not self.usable_[group]:
                continue
            ridge = RidgeCV(alphas=alphas.copy(), alpha_per_target=self.n_components > 1)
            ridge.fit(standardised[group], target[present[:, j]])
            self.maps_[group] = Pipeline([*self.preprocessors_[group].steps, ("ridgecv", ridge)])

    # ------------------------------------------------------------------ prediction

    def group_transform(self, X):
        """Each usable group's map f_g(x_g), NaN on the rows lacking the group.

        Returns
        -------
        dict of str to ndarray of shape (n_samples, n_components)
        """
        check_is_fitted(self)
        groups = self._check_frame(X, self.groups, reset=False)
        return self._group_maps(X, groups)

    def transform(self, X):
        """The patients' coordinates z in the shared space, shape (n_samples, n_components)."""
        return self._z(X)

    def get_feature_names_out(self, input_features=None):
        """``shared0, shared1, …`` — the coordinates of Z."""
        check_is_fitted(self)
        return np.asarray([f"shared{k}" for k in range(self.n_components)], dtype=object)

    # ------------------------------------------------------------------ helpers

    def _z(self, X):
        # not through transform(): set_output would wrap it, and g was fitted on an array
        check_is_fitted(self)
        groups = self._check_frame(X, self.groups, reset=False)
        return self._shared(X, groups)

    def _group_maps(self, X, groups):
        present = self._presence(X, groups)
        out = {}
        for j, (group, cols) in enumerate(groups.items()):
            if not self.usable_.get(group, False):
                continue
            z = np.full((len(X), self.n_components), np.nan)
            rows = present[:, j]
            if rows.any():
                z[rows] = (
                    self.maps_[group]
                    .predict(self._group_input(X, rows, cols))
                    .reshape(-1, self.n_components)
                )
            out[group] = z
        return out

    def _shared(self, X, groups):
        maps = self._group_maps(X, groups)
        stacked = np.stack(list(maps.values()))  # (n_groups, n_samples, n_components)
        counts = (~np.isnan(stacked[:, :, 0])).sum(axis=0)
        total = np.nansum(stacked, axis=0)
        # no usable group: the training mean of Z, the origin (T is centred)
        return np.divide(
            total, counts[:, None], out=np.zeros_like(total), where=counts[:, None] > 0
        )

    def _fit_inputs(self, X, y, dtype=None) -> tuple[dict[str, list[str]], np.ndarray]:
        """The checked groups (the training frame checked against them) and ``y`` as an
        array of ``dtype``, as long as ``X``."""
        groups = self._check_params()
        self._check_frame(X, groups, reset=True)
        y = np.asarray(y, dtype=dtype)
        if len(y) != len(X):
            raise ValueError(f"X and y have different lengths: {len(X)} and {len(y)}")
        return groups, y

    def _check_params(self) -> dict[str, list[str]]:
        if not isinstance(self.groups, Mapping) or not self.groups:
            raise ValueError("groups must be a non-empty dict of group name → column names")
        groups = {str(g): list(cols) for g, cols in self.groups.items()}
        empty = [g for g, cols in groups.items() if not cols]
        if empty:
            raise ValueError(f"groups without columns: {empty}")
        if self.method != "pls":
            raise ValueError(f"method must be 'pls', got {self.method!r}")
        if not (
            isinstance(self.n_components, Integral)
            and not isinstance(self.n_components, bool)
            and self.n_components >= 1
        ):
            raise ValueError(f"n_components must be a positive integer, got {self.n_components!r}")
        if self.alphas is not None and (len(self.alphas) == 0 or any(a <= 0 for a in self.alphas)):
            raise ValueError(f"alphas must be positive numbers, got {self.alphas!r}")
        allowed = set(BRANCH_OPTIONS)
        if self.branch_options is not None and (
            not isinstance(self.branch_options, Mapping) or set(self.branch_options) - allowed
        ):
            raise ValueError(
                f"branch_options must be a dict with keys among {sorted(allowed)}, got "
                f"{self.branch_options!r}"
            )
        return groups

    def _check_frame(self, X, groups, *, reset: bool) -> dict[str, list[str]]:
        if not hasattr(X, "columns") or not hasattr(X, "loc"):
            raise TypeError(
                f"{type(self).__name__} needs a pandas DataFrame with the groups' columns, "
                f"got {type(X).__name__}"
            )
        groups = {str(g): list(cols) for g, cols in groups.items()}
        columns = set(map(str, X.columns))
        unknown = {g: [c for c in cols if c not in columns] for g, cols in groups.items()}
        unknown = {g: cols for g, cols in unknown.items() if cols}
        if unknown:
            raise ValueError(f"columns of the groups are not in X: {unknown}")
        if reset:
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.n_features_in_ = X.shape[1]
        return groups

    @staticmethod
    def _presence(X, groups) -> np.ndarray:
        """Boolean (n_samples, n_groups): the row has at least one value of the group."""
        return np.column_stack(
            [X[cols].notna().any(axis=1).to_numpy() for cols in groups.values()]
        ).reshape(len(X), len(groups))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class SharedSpaceClassifier(ClassifierMixin, _SharedSpace):
    """Shared-space fusion: per-modality maps f_g: X_g → Z into one latent space, then g: Z → Y.

    Fitting, on the data passed to ``fit`` only:

    1. **Per group**: median-impute and standardise the group's columns, both fitted on the
       training rows that *have* the group (at least one non-NaN column).
    2. **The common space Z** is defined once, by a PLS-DA (:class:`PLSRegression` against the 0/1
       label, or one indicator column per class with three or more classes, ``n_components``
       components) on the concatenation of all groups' standardised
       blocks over all training rows. Each block is divided by ``sqrt(n_columns)`` (multiblock
       PLS block scaling, so a wide modality does not dominate a narrow one by its width alone),
       and a group a row lacks enters as 0, its training mean (it contributes nothing). The PLS
       scores T are sign-aligned (each component covaries positively with the label) and scaled
       to unit variance.
    3. **Per group, the map** f_g is a ridge regression (:class:`RidgeCV`, penalty chosen per
       component by leave-one-out among ``alphas``) from the group's standardised columns to T,
       fitted on the training rows having the group. It estimates E[T | x_g]: the part of the
       shared coordinates that this modality can predict; an uninformative modality is shrunk
       towards the centre of Z.
    4. A patient's ``z`` (:meth:`transform`) is the mean of f_g(x_g) over the groups it has (a
       patient without any group gets the training mean of Z, the origin), and the classifier g
       (default ``LogisticRegression``) is fitted on the training patients' ``z``.

    Why this design. A common space must be *one* space, with coordinates that mean the same
    thing whichever modality a patient arrives with. Separate PLS or CCA fits per modality give
    per-modality coordinates that are comparable only after an ad hoc alignment (signs,
    rotations, scales), and CCA needs pairs of modalities (it does not extend cleanly beyond
    two, and needs the patients having both). Here Z is defined by one supervised projection of
    all modalities together, and each modality *regresses onto the same targets*, so the
    coordinates are shared by construction; each map is fitted on every training patient having
    its modality (no complete-case requirement), and the maps are averaged at prediction time, so
    any subset of modalities gives a point in the same space.

    Caveats. PLS is supervised: on wide noise its in-sample scores correlate with the label, so
    ``g`` is fitted on optimistic ``z`` and may be over-confident (the ranking, hence the
    out-of-fold AUC, is unaffected: at chance on noise). Averaging the maps of the present groups
    shrinks ``z`` towards the origin when modalities are missing (each map predicts only its own
    share of T); ``g`` is fitted on patients with the same missingness pattern mix.

    Parameters
    ----------
    groups : dict of str to list of str
        Group (modality) name → its DataFrame column names.
    n_components : int, default=2
        Dimension of the shared space Z (PLS components).
    method : {"pls"}, default="pls"
        How Z is defined. Only ``"pls"`` (above) is implemented.
    classifier : classifier, optional
        The model g: Z → Y (cloned). Default ``LogisticRegression(random_state=random_state)``.
        To tune it (e.g. ``classifier__C`` in a grid search), pass an estimator explicitly.
    alphas : sequence of float, optional
        Ridge penalties for the maps (default :data:`DEFAULT_ALPHAS`).
    random_state : int or None, default=0
        Seed of the default classifier (the rest of the fit is deterministic).
    branch_options : dict, optional
        Per-group preprocessing of a fusion branch (keys :data:`BRANCH_OPTIONS`, as in
        :func:`make_branch`): ComBat by site, ICC, correlation filter, top-k selection (scored
        against the label), each fitted on the training rows having the group, in place of
        step 1's impute → standardise. ``None``: step 1 as above.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    preprocessors_ : dict of str to Pipeline
        Per group: the fitted median imputer and scaler (or the branch steps of
        ``branch_options``).
    pls_ : PLSRegression
        The PLS defining Z, fitted on the block-scaled concatenation.
    z_sign_, z_mean_, z_scale_ : ndarray of shape (n_components,)
        Alignment of the PLS scores: ``T = sign * (pls.transform(X) - mean) / scale``.
    maps_ : dict of str to Pipeline
        Per usable group: imputer → scaler → ``RidgeCV``, predicting T from the group's columns.
    usable_ : dict of str to bool
        Groups with at least two training rows (a map was fitted). An unusable group is treated
        as absent at prediction.
    classifier_ : classifier
        The fitted g.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        The columns of the training DataFrame (only the groups' columns are read).
    """

    def __init__(
        self,
        groups,
        n_components=2,
        method="pls",
        classifier=None,
        alphas=None,
        random_state=0,
        branch_options=None,
    ):
        self.groups = groups
        self.n_components = n_components
        self.method = method
        self.classifier = classifier
        self.alphas = alphas
        self.random_state = random_state
        self.branch_options = branch_options

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y):
        """Fit the per-group maps into Z and the classifier on the training patients' z."""
        groups, y = self._fit_inputs(X, y)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        classes, codes = np.unique(y, return_inverse=True)
        if y_type not in ("binary", "multiclass") or len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs two or more classes; got {len(classes)} "
                f"class(es) (target type {y_type!r})"
            )
        # PLS-DA: the 0/1 label, or one indicator column per class
        target = codes[:, None] if len(classes) == 2 else np.eye(len(classes))[codes]
        self._fit_space(X, groups, target.astype(np.float64), codes)
        classifier = (
            LogisticRegression(random_state=self.random_state)
            if self.classifier is None
            else clone(self.classifier)
        )
        self.classifier_ = classifier.fit(self._shared(X, groups), y)
        self.classes_ = self.classifier_.classes_
        return self

    # ------------------------------------------------------------------ prediction

    def predict_proba(self, X):
        """Probabilities of ``classes_`` from the patients' z."""
        return self.classifier_.predict_proba(self._z(X))

    def decision_function(self, X):
        """The classifier's decision function on the patients' z."""
        return self.classifier_.decision_function(self._z(X))

    def predict(self, X):
        """The predicted class of each patient."""
        return self.classifier_.predict(self._z(X))


class SharedSpaceRegressor(RegressorMixin, _SharedSpace):
    """Shared-space fusion for a continuous target.

    :class:`SharedSpaceClassifier` with the PLS fitted against the standardised target and a
    regressor ``g: Z → y`` (default ``LinearRegression``) on the training patients' z. A
    patient missing a modality is mapped through the others, as for the classifier.

    Parameters
    ----------
    groups, n_components, method, alphas, random_state, branch_options
        As in :class:`SharedSpaceClassifier`.
    regressor : regressor, optional
        The model g (cloned). Default ``LinearRegression()``.

    Attributes
    ----------
    regressor_ : regressor
        The fitted g; the other attributes are the classifier's, without ``classes_``.
    """

    def __init__(
        self,
        groups,
        n_components=2,
        method="pls",
        regressor=None,
        alphas=None,
        random_state=0,
        branch_options=None,
    ):
        self.groups = groups
        self.n_components = n_components
        self.method = method
        self.regressor = regressor
        self.alphas = alphas
        self.random_state = random_state
        self.branch_options = branch_options

    def fit(self, X, y):
        """Fit the per-group maps into Z and the regressor on the training patients' z."""
        groups, y = self._fit_inputs(X, y, dtype=np.float64)
        scale = y.std()
        self._fit_space(X, groups, ((y - y.mean()) / (scale if scale > 0 else 1.0))[:, None], y)
        regressor = LinearRegression() if self.regressor is None else clone(self.regressor)
        self.regressor_ = regressor.fit(self._shared(X, groups), y)
        return self

    def predict(self, X):
        """The predicted value of each patient, from its z."""
        return self.regressor_.predict(self._z(X))
