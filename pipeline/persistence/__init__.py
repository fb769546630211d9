"""Train a fusion model on a whole cohort, save it safely, apply it to new patients.

:func:`train_model` / :func:`train_from_report` fit one fusion estimator on every patient
(``radfusion train``); :func:`save_model` / :func:`load_model` write and read it as one
``.skops`` file that cannot run code; :func:`predict_table` scores new patients
(``radfusion predict``) after checking their columns, categories and the library versions.
"""

from ._model_file import (
    ModelVersionWarning,
    TrainedModel,
    is_trusted_type,
    load_model,
    save_model,
)
from ._predict import (
    ExtraColumnsWarning,
    model_inputs,
    model_matrix,
    predict_table,
)
from ._train import (
    TrainingDataWarning,
    train_from_report,
    train_model,
)

__all__ = [
    "ExtraColumnsWarning",
    "ModelVersionWarning",
    "TrainedModel",
    "TrainingDataWarning",
    "is_trusted_type",
    "load_model",
    "model_inputs",
    "model_matrix",
    "predict_table",
    "save_model",
    "train_from_report",
    "train_model",
]
