"""The survival target: a time and an event column, checked patient by patient (no
scikit-survival needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline.survival import (
    EventStratifiedKFold,
    check_survival_y,
    survival_target,
    survival_target_from_table,
)

# ----------------------------------------------------------------------------- the target


def test_target_is_sksurv_shaped():
    y = survival_target(["5", 3.5, 0], [1, "false", True], ["P1", "P2", "P3"])
    assert y.dtype.names == ("event", "time")
    assert y["event"].tolist() == [True, False, True]
    assert y["time"].tolist() == [5.0, 3.5, 0.0]


def test_target_errors_name_every_patient():
    with pytest.raises(InputError) as error:
        survival_target(
            [1.0, -2.0, None, "soon", 4.0, 5.0],
            [1, 1, 0, 1, 2, "maybe"],
            ["P1", "P2", "P3", "P4", "P5", "P6"],
            time_column="os_months",
            event_column="death",
            file="bio.csv",
        )
    text = str(error.value)
    assert "patient P2" in text and "negative" in text
    assert "patient P3" in text and "missing" in text
    assert "patient P4" in text and "'soon' is not a number" in text
    assert "patient P5" in text and "not 0/1" in text
    assert "patient P6" in text and "'maybe'" in text
    assert "P1" not in text
    assert "os_months" in text and "death" in text and "bio.csv" in text
    assert len(error.value.problems) == 5


def test_target_without_events_is_an_error():
    with pytest.raises(InputError, match="no events"):
        survival_target([1, 2, 3], [0, 0, 0])


def test_target_from_table_names_missing_columns_and_patients():
    table = pd.DataFrame({"patient_id": ["007", "1e3"], "time": [1.0, np.nan], "event": [1, 0]})
    with pytest.raises(InputError) as error:
        survival_target_from_table(table, id_column="patient_id")
    assert "patient 1e3" in str(error.value)
    with pytest.raises(InputError, match="'os'"):
        survival_target_from_table(table, time="os")


def test_check_survival_y_refuses_a_plain_outcome():
    with pytest.raises(ValueError, match="structured array"):
        check_survival_y(np.array([0, 1, 1]))


def test_event_stratified_folds_share_events():
    rng = np.random.default_rng(0)
    y = survival_target(rng.exponential(size=100), rng.random(100) < 0.3)
    cv = EventStratifiedKFold(5, repeats=2, random_state=0)
    splits = list(cv.split(np.zeros((100, 1)), y))
    assert len(splits) == cv.get_n_splits(y=y) == 10
    for _, test in splits:
        assert abs(y["event"][test].mean() - y["event"].mean()) < 0.06
    few = survival_target(np.arange(1, 11), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    assert EventStratifiedKFold(5).get_n_splits(y=few) == 2  # only two events
