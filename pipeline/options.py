"""The model options of a run: one object, one set of defaults, shared by cv and train.

``radfusion cv`` and ``radfusion train`` read the same command-line options into a
:class:`ModelOptions`; :func:`radfusion.pipeline.experiment.run_cv` and
:func:`radfusion.pipeline.persistence.train_model` take it; its :meth:`ModelOptions.params`
are the parameters of the fusion estimators (:func:`radfusion.pipeline.fusion.make_estimator`)
that cv validates, the report records (``config.models``) and train fits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from numbers import Integral
from pathlib import Path
from typing import Any

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import SITE_COLUMN

from .fusion import CALIBRATIONS, COMBINERS, HARMONIZE_UNSEEN, SELECT_METHODS
from .learners import LEARNER_NAMES, LEARNERS, SURVIVAL_LEARNERS

__all__ = ["ModelOptions"]


@dataclass(frozen=True)
class ModelOptions:
    """Every modelling choice of a cv or train run (the command-line options of both).

    Parameters
    ----------
    learner : str, default="lr"
        Learner of the single, early and late models (a survival run: "coxnet", "rsf" or
        "gbsa"; its default "lr" reads as "coxnet").
    learners : sequence of str, default=("lr", "svm", "rf", "xgb")
        Learners stacked per group (and voted by late fusion over a single group).
    group_pattern : str, optional
        Regular expression whose first group names a column's group.
    harmonize : bool, default=False
        ComBat by the table's ``site`` column inside every branch.
    harmonize_unseen : {"pooled", "error"}, default="pooled"
        ComBat's handling of a site absent from a training fold.
    icc_table : str, optional
        Path of an ICC table (``radfusion robustness``): keep features whose ICC reaches
        ``icc_threshold`` in every branch.
    icc_threshold : float, default=0.75
    correlation_threshold : float, optional
        Per branch, drop features correlated above it with an earlier kept one.
    select_k : int, optional
        Per branch, keep the ``select_k`` best features.
    select_method : {"anova", "mrmr"}, default="anova"
    tune : bool, default=False
        A randomised inner search of ``n_iter`` settings in every branch (nested CV).
    n_iter : int, default=20
    calibration : {"sigmoid", "isotonic"}, optional
        Calibrate each model's probabilities on inner folds of its training rows
        (classification only; see :class:`radfusion.pipeline.fusion.FusionClassifier`).
    combiner : {"mean", "platt", "best", "convex", "shrunk", "logistic"}, optional
        How stacking combines its branches (late fusion is always the mean); None:
        :data:`radfusion.pipeline.fusion.DEFAULT_COMBINER` of the task (``"platt"`` for
        classes, ``"mean"`` for regression).

    Raises
    ------
    InputError
        An unknown learner, strategy option or out-of-range value (all listed at once).
    """

    learner: str = "lr"
    learners: Sequence[str] = LEARNERS
    group_pattern: str | None = None
    harmonize: bool = False
    harmonize_unseen: str = "pooled"
    icc_table: str | None = None
    icc_threshold: float = 0.75
    correlation_threshold: float | None = None
    select_k: int | None = None
    select_method: str = "anova"
    tune: bool = False
    n_iter: int = 20
    calibration: str | None = None
    combiner: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "learners", tuple(self.learners))
        if self.icc_table is not None:
            object.__setattr__(self, "icc_table", str(Path(self.icc_table)))
        problems = self._problems()
        if problems:
            raise InputError("Bad model options", problems)

    def _problems(self) -> list[Problem]:
        """Every value that cannot work, checked before any table is read."""
        known = (*LEARNER_NAMES, *SURVIVAL_LEARNERS)  # which fit the task: checked at the run
        problems = [
            Problem(f"learner {name!r} is not one of {', '.join(known)}")
            for name in dict.fromkeys([self.learner, *self.learners])
            if name not in known
        ]
        if not self.learners or len(set(self.learners)) != len(self.learners):
            problems.append(Problem(f"learners {list(self.learners)} must be distinct, not none"))
        checks = [
            (
                self.harmonize_unseen in HARMONIZE_UNSEEN,
                f"harmonize_unseen {self.harmonize_unseen!r} is not one of "
                f"{', '.join(HARMONIZE_UNSEEN)}",
            ),
            (
                self.select_method in SELECT_METHODS,
                f"select_method {self.select_method!r} is not one of {', '.join(SELECT_METHODS)}",
            ),
            (
                self.correlation_threshold is None or 0 < self.correlation_threshold <= 1,
                f"correlation_threshold {self.correlation_threshold!r} is not in (0, 1]",
            ),
            (
                self.select_k is None
                or (isinstance(self.select_k, Integral) and self.select_k >= 1),
                f"select_k {self.select_k!r} is not a positive integer",
            ),
            (
                0 <= self.icc_threshold <= 1,
                f"icc_threshold {self.icc_threshold!r} is not in [0, 1]",
            ),
            (
                isinstance(self.n_iter, Integral) and self.n_iter >= 1,
                f"n_iter {self.n_iter!r} is not a positive integer",
            ),
            (
                self.calibration is None or self.calibration in CALIBRATIONS,
                f"calibration {self.calibration!r} is not one of {', '.join(CALIBRATIONS)}",
            ),
            (
                self.combiner is None or self.combiner in COMBINERS,
                f"combiner {self.combiner!r} is not one of {', '.join(COMBINERS)}",
            ),
        ]
        return problems + [Problem(message) for ok, message in checks if not ok]

    def params(
        self, *, random_state: int = 0, categories: Mapping[str, Sequence[str]] | None = None
    ) -> dict[str, Any]:
        """Parameters of the fusion estimators (all but ``strategy`` and ``use_groups``).

        ``categories`` is the level set of the text columns (the whole table's: it reads no
        label), so that a rare level absent from a training fold is still known.
        """
        return {
            "learner": self.learner,
            "learners": tuple(self.learners),
            "group_pattern": self.group_pattern,
            "categories": {k: list(v) for k, v in categories.items()} if categories else "auto",
            "harmonize": SITE_COLUMN if self.harmonize else None,
            "harmonize_unseen": self.harmonize_unseen,
            "icc_table": self.icc_table,
            "icc_threshold": self.icc_threshold,
            "correlation_threshold": self.correlation_threshold,
            "select_k": self.select_k,
            "select_method": self.select_method,
            "tune": self.tune,
            "n_iter": self.n_iter,
            "calibration": self.calibration,
            "combiner": self.combiner,
            "random_state": random_state,
        }

    def as_dict(self) -> dict[str, Any]:
        """The options as JSON-ready data (``learners`` as a list)."""
        out = asdict(self)
        out["learners"] = list(self.learners)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelOptions:
        """Options from :meth:`as_dict` (unknown keys are refused)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown model options: {', '.join(unknown)}")
        return cls(**dict(data))
