"""Train a fusion model on a whole cohort, save it safely, apply it to new patients.

:func:`train_model` / :func:`train_from_report` fit one fusion estimator on every patient
(``radfusion train``); :func:`save_model` / :func:`load_model` write and read it as one
``.skops`` file that cannot run code; :func:`predict_table` scores new patients
(``radfusion predict``) after checking their columns, categories and the library versions.
:func:`save_model` writes a model card beside every model (:func:`model_card`, the Model Card
Toolkit's JSON schema, and Markdown); ``validate`` adds its results to it
(:func:`append_external`).
"""

from ._card import (
    CARD_SCHEMA_VERSION,
    card_markdown,
    card_paths,
    cross_validation_summary,
    external_summary,
    model_card,
)
from ._model_file import (
    ModelVersionWarning,
    TrainedModel,
    append_external,
    is_trusted_type,
    load_model,
    save_model,
    write_card,
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
    "CARD_SCHEMA_VERSION",
    "ExtraColumnsWarning",
    "ModelVersionWarning",
    "TrainedModel",
    "TrainingDataWarning",
    "append_external",
    "card_markdown",
    "card_paths",
    "cross_validation_summary",
    "external_summary",
    "is_trusted_type",
    "load_model",
    "model_inputs",
    "model_card",
    "model_matrix",
    "predict_table",
    "save_model",
    "train_from_report",
    "train_model",
    "write_card",
]
