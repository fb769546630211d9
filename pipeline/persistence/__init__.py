"""Train a fusion model on a whole cohort, save it safely, apply it to new patients.

:func:`train_model` / :func:`train_from_report` fit one fusion estimator on every patient
(``radfusion train``); :func:`save_model` / :func:`load_model` write and read it as one
``.skops`` file that cannot run code; :func:`predict_table` scores new patients
(``radfusion predict``) after checking their columns, categories and the library versions.
"""

from ._model_file import (
    FORMAT,
    FORMAT_VERSION,
    METADATA_MEMBER,
    TRUSTED_TYPES,
    ModelVersionWarning,
    TrainedModel,
    check_versions,
    is_trusted_type,
    library_versions,
    load_model,
    save_model,
)
from ._predict import ExtraColumnsWarning, model_inputs, model_matrix, predict_table
from ._train import TrainingDataWarning, train_from_report, train_model

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_MEMBER",
    "TRUSTED_TYPES",
    "ExtraColumnsWarning",
    "ModelVersionWarning",
    "TrainedModel",
    "TrainingDataWarning",
    "check_versions",
    "is_trusted_type",
    "library_versions",
    "load_model",
    "model_inputs",
    "model_matrix",
    "predict_table",
    "save_model",
    "train_from_report",
    "train_model",
]
