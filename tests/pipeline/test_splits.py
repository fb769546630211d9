"""Inner folds that adapt to small class counts, and equal StratifiedKFold otherwise."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from radfusion.pipeline.learners import make_learner
from radfusion.pipeline.splits import AdaptiveStratifiedKFold, adapted_folds


def test_splits_equal_stratified_kfold_when_every_class_has_enough_rows():
    y = np.array([0, 1] * 10 + [1] * 5)
    X = np.zeros((len(y), 1))
    ours = list(AdaptiveStratifiedKFold(5, shuffle=True, random_state=3).split(X, y))
    theirs = list(StratifiedKFold(5, shuffle=True, random_state=3).split(X, y))
    assert len(ours) == len(theirs) == 5
    for (a, b), (c, d) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert AdaptiveStratifiedKFold(5).get_n_splits() == 5


@pytest.mark.parametrize("smallest, expected", [(1, 2), (2, 2), (3, 3), (4, 4), (9, 5)])
def test_folds_shrink_to_the_smallest_class_but_not_below_two(smallest, expected):
    y = np.array([0] * smallest + [1] * 10)
    assert adapted_folds(5, y) == expected
    splits = (
        list(AdaptiveStratifiedKFold(5).split(np.zeros((len(y), 1)), y)) if smallest > 1 else []
    )
    if smallest > 1:
        assert len(splits) == expected
        assert sorted(np.concatenate([test for _, test in splits]).tolist()) == list(range(len(y)))


def test_a_class_of_one_gets_two_folds_as_stratified_kfold_does():
    y = np.array([0] + [1] * 6)
    X = np.zeros((7, 1))
    with pytest.warns(UserWarning, match="least populated class"):
        ours = [test.tolist() for _, test in AdaptiveStratifiedKFold(5).split(X, y)]
    with pytest.warns(UserWarning):
        assert ours == [test.tolist() for _, test in StratifiedKFold(2).split(X, y)]


def test_calibrated_svm_fits_on_three_patients_per_class():
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 3)
    X = rng.normal(size=(6, 2)) + y[:, None]
    proba = make_learner("svm").fit(X, y).predict_proba(X)
    assert proba.shape == (6, 2) and np.allclose(proba.sum(axis=1), 1)
