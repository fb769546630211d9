"""Base learners for wide tables on the six radMLBench tables, and the rule that picks defaults.

Usage:
    python benchmarks/base_learners.py [--learners NAME ...] [--datasets NAME ...]
                                       [--folds 5] [--repeats 3] [--seed 0] [--jobs 2]
                                       [--out radfusion-out/base_learners]

Pre-registered (written and committed before the comparison was run; the numbers it produces
do not change this text).

Candidates, each one branch on all the features of the table (impute -> drop constants ->
scale -> learner, i.e. ``build_model(groups, "early", learner=NAME, random_state=seed)``):

- current defaults: ``lr`` (L2, C=0.1, balanced), ``svm`` (RBF + Platt), ``rf`` (200 trees,
  sqrt), ``xgb`` (200 depth-3 trees);
- ``l1``: L1 logistic regression (liblinear), C chosen among 7 values 10^-2..10^1 by inner
  5-fold ``AdaptiveStratifiedKFold`` on the training rows by log-loss, balanced weights;
- ``enet``: elastic-net logistic regression (saga, l1_ratio 0.5), C chosen as for ``l1``;
- ``et``: extra-trees, 500 trees, ``max_features="sqrt"``, balanced bootstrap weights;
- ``lr_mrmr``: ``lr`` after mRMR selection of the top 20 features inside the branch
  (``select_k=20, select_method="mrmr"``), fitted on the training rows of each fold.

Protocol: the same stratified 5 folds x 3 repeats (seed 0) for every candidate on every table
(5 x 2 if it cannot finish in time; the output says which). Per table and candidate: ROC AUC,
mean over repeats of the pooled out-of-fold AUC, with a 95 % patient-bootstrap CI
(:func:`radfusion.pipeline.validation.summarize`), the Brier score, the gap to the published
radMLBench ``best_auc`` (optimistic: best of 616 pipelines x 4 thresholds, not nested), and
the wall time of its CV (on a busy shared machine: indicative only).

Rule (families: linear = lr <- {l1, enet, lr_mrmr}; forest = rf <- {et}; svm and xgb have no
challenger):

1. A challenger replaces the current default of its family when its mean AUC over the six
   tables is higher by >= 0.010 AND its AUC is higher on >= 4 of the 6 tables. Equal AUC on a
   table is not a win; a table where the challenger fails counts as a loss and leaves it without
   a mean, so it cannot win. If several challengers of one family qualify, the one with the
   highest mean replaces the default. Otherwise (ties included) the current default stays.
2. The default learner of single / early / late models (today ``lr``) is replaced by the
   candidate with the highest six-table mean only if that candidate beats the linear family's
   winner from step 1 by the same margin (>= 0.010 mean AND >= 4 of 6 tables).
3. Brier score and cost are reported next to the rule and do not enter it.

The script applies the rule and prints what it says to change; it changes no default itself.

Outputs under ``--out``: ``results.csv`` (one row per learner x table, rewritten after each),
``base_learners.md`` (tables and the rule's verdict) and ``predictions/<learner>.csv.gz``.
"""
