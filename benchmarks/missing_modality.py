"""Benchmark: fusion with a missing modality on the synthetic cohort.

Checks the claim "on the synthetic cohort with 30 % of patients lacking MR, late fusion and
stacking still score every patient and beat the CT-only model":

1. :func:`radfusion.features.synthetic.make_cohort` writes a cohort in which ``--missing`` of the
   patients have no MR image (their CT, biomarkers and outcome are unchanged);
2. :func:`radfusion.features.runner.extract_cohort` extracts the pyradiomics features, with a
per-case
   cache shared by every run under ``--out`` (a re-run, or a larger cohort, only extracts
   what is new);
3. :func:`radfusion.pipeline.dataset.load_dataset` joins them with the biomarkers (label
``outcome``);
4. the models are cross-validated on the same repeated stratified folds
   (:func:`radfusion.pipeline.validation.cross_validate_models`):

   - ``ct_only``: early fusion over the CT groups only (``CT__tumor``, ``CT__peritumoral``),
     the model the claim compares against;
   - ``ct+clinical``: early fusion over the CT groups and the clinical group, a reference
     that has every input a patient without MR has;
   - ``early``, ``late``, ``stacking`` and ``shared`` over every group (CT, MR, clinical).

Printed: the number of patients and of patients lacking MR; per model, the number of
patients it scored (a finite out-of-fold probability in every repeat; must be all) and the
ROC AUC mean [95 % bootstrap CI] (:func:`radfusion.pipeline.validation.summarize`) on every patient,
on the patients lacking MR and on those having it; DeLong tests of late and stacking against
``ct_only`` (:func:`radfusion.pipeline.validation.compare_models`) and whether they beat it (higher
mean AUC over every patient). The out-of-fold predictions and a JSON summary are written to
``<out>/n<patients>-seed<seed>-missing<missing>/``. Exit status 0 when both late and stacking
score every patient and beat ``ct_only``, 1 otherwise.

Usage::

    python benchmarks/missing_modality.py [--patients 160] [--seed 0] [--missing 0.3]
        [--out radfusion-out/missing_modality] [--jobs -1] [--folds 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radfusion.features.naming import CLINICAL_GROUP, SEPARATOR  # noqa: E402
from radfusion.features.runner import extract_cohort  # noqa: E402
from radfusion.features.synthetic import make_cohort  # noqa: E402
from radfusion.features.table import write_extraction  # noqa: E402
from radfusion.pipeline.dataset import Dataset, load_dataset  # noqa: E402
from radfusion.pipeline.fusion import FUSED, build_model, build_models  # noqa: E402
from radfusion.pipeline.validation import compare_models, summarize  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from modelling import timed_args_cv  # noqa: E402  (a sibling script)

REFERENCE = "ct_only"
CLAIMED = ("late", "stacking")  # the strategies the claim is about
SUBSETS = ("all", "lacking MR", "having MR")
N_BOOTSTRAP = 1000


def modality_groups(groups: dict[str, list[str]], modality: str) -> dict[str, list[str]]:
    """The groups of one modality (``<modality>__<mask>``), in table order."""
    return {g: cols for g, cols in groups.items() if g.startswith(f"{modality}{SEPARATOR}")}


def make_models(groups: dict[str, list[str]], seed: int) -> dict:
    """CT-only and CT + clinical early fusion, then every fused strategy over all groups."""
    ct = modality_groups(groups, "CT")
    if not ct:
        raise SystemExit(f"no CT group in the table (groups: {list(groups)})")
    models = {REFERENCE: build_model(ct, "early", random_state=seed)}
    if CLINICAL_GROUP in groups:
        models["ct+clinical"] = build_model(
            {**ct, CLINICAL_GROUP: groups[CLINICAL_GROUP]}, "early", random_state=seed
        )
    fused = build_models(groups, random_state=seed)
    models.update({name: fused[name] for name in FUSED})
    return models


def lacking_mr(data: Dataset) -> pd.Series:
    """Per patient (``data.X`` order): True when every MR column is missing."""
    columns = [c for cols in modality_groups(data.groups, "MR").values() for c in cols]
    if not columns:
        raise SystemExit(f"no MR group in the table (groups: {list(data.groups)})")
    return data.X[columns].isna().all(axis=1)


def scored_patients(predictions: pd.DataFrame) -> dict[str, set[str]]:
    """Per model, the patients with a finite probability in every repeat."""
    finite = predictions.assign(ok=np.isfinite(predictions["proba"].to_numpy(dtype=float)))
    per_patient = finite.groupby(["model", "patient_id"], sort=False)["ok"].all()
    return {
        str(model): {str(p) for p, ok in rows.droplevel(0).items() if ok}
        for model, rows in per_patient.groupby(level=0, sort=False)
    }


def auc_table(
    predictions: pd.DataFrame,
    subsets: dict[str, set[str]],
    scored: dict[str, set[str]],
    seed: int,
) -> dict[str, dict[str, dict[str, float] | None]]:
    """``{model: {subset: roc_auc summary or None}}`` on each subset's scored patients.

    Models that scored every patient of a subset are summarised together (same bootstrap
    resamples); one that did not is summarised alone on the patients it scored.
    """
    table: dict[str, dict[str, dict[str, float] | None]] = {
        str(m): {} for m in pd.unique(predictions["model"])
    }
    for subset, patients in subsets.items():
        rows = predictions[predictions["patient_id"].astype(str).isin(patients)]
        complete = [m for m in table if patients <= scored.get(m, set())]
        batches = [complete] + [[m] for m in table if m not in complete]
        for batch in batches:
            if not batch:
                continue
            part = rows[rows["model"].isin(batch)]
            if len(batch) == 1 and batch[0] not in complete:
                part = part[part["patient_id"].astype(str).isin(scored.get(batch[0], set()))]
            try:
                summary = summarize(part, n_bootstrap=N_BOOTSTRAP, seed=seed)
            except ValueError:  # no patient, or a single class: AUC undefined
                summary = {}
            for model in batch:
                table[model][subset] = summary.get(model, {}).get("roc_auc")
    return table


def _auc(cell: dict[str, float] | None) -> str:
    if cell is None:
        return f"{'n/a':<21}"
    return f"{cell['mean']:.3f} [{cell['ci_low']:.3f}, {cell['ci_high']:.3f}]"


def print_report(
    n_patients: int,
    subsets: dict[str, set[str]],
    scored: dict[str, set[str]],
    aucs: dict[str, dict[str, dict[str, float] | None]],
    comparisons: list[dict],
) -> dict[str, bool]:
    """Print the tables; return ``{strategy: beats ct_only}`` for the claimed strategies."""
    n_lacking, n_having = len(subsets["lacking MR"]), len(subsets["having MR"])
    print(
        f"patients: {n_patients}, lacking MR: {n_lacking} ({n_lacking / n_patients:.0%}), "
        f"having MR: {n_having}"
    )
    print()
    header = (
        f"{'model':<12} {'scored':>9}  {'ROC AUC, all':<21}  "
        f"{f'lacking MR (n={n_lacking})':<21}  {f'having MR (n={n_having})':<21}"
    ).rstrip()
    print(header)
    print("-" * len(header))
    for model, cells in aucs.items():
        count = f"{len(scored.get(model, set()) & subsets['all'])}/{n_patients}"
        print(f"{model:<12} {count:>9}  " + "  ".join(_auc(cells.get(s)) for s in SUBSETS))
    print()
    print(f"DeLong, every patient, vs {REFERENCE} (difference [95 % CI], p, Holm p):")
    for row in comparisons:
        print(
            f"  {row['model']:<9} {row['difference']:+.3f} [{row['ci_low']:+.3f}, "
            f"{row['ci_high']:+.3f}]  p={row['p_value']:.3g}  p_holm={row['p_holm']:.3g}"
        )
    print()
    reference = aucs[REFERENCE]["all"]
    verdict: dict[str, bool] = {}
    for strategy in CLAIMED:
        everyone = scored.get(strategy, set()) >= subsets["all"]
        cell = aucs[strategy]["all"]
        beats = bool(
            everyone
            and cell is not None
            and reference is not None
            and cell["mean"] > reference["mean"]
        )
        verdict[strategy] = beats
        print(
            f"{strategy} scores every patient: {'yes' if everyone else 'NO'}; "
            f"beats {REFERENCE} (mean AUC over every patient): {'yes' if beats else 'NO'}"
        )
    return verdict


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=160, help="synthetic patients")
    parser.add_argument("--seed", type=int, default=0, help="cohort, folds and models seed")
    parser.add_argument(
        "--missing", type=float, default=0.3, help="fraction of patients without MR (0-1)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "radfusion-out" / "missing_modality",
        help="output folder (cohorts, feature cache, results)",
    )
    parser.add_argument("--jobs", type=int, default=-1, help="workers (-1: every core)")
    parser.add_argument("--folds", type=int, default=5, help="folds per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of stratified K-fold")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag = f"n{args.patients}-seed{args.seed}-missing{args.missing:g}"
    run_dir = args.out / tag
    run_dir.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}

    started = time.perf_counter()
    cohort = make_cohort(
        args.out / f"cohort-{tag}",
        n_patients=args.patients,
        seed=args.seed,
        missing_mr=args.missing,
    )
    times["synthesis"] = time.perf_counter() - started

    started = time.perf_counter()
    result = extract_cohort(
        cohort.manifest, n_jobs=args.jobs, progress=False, cache_dir=args.out / "cache"
    )
    features = run_dir / "features.parquet"
    write_extraction(result, features)
    times["extraction"] = time.perf_counter() - started
    print(f"extraction: {result.summary()}")
    for row in result.failures.itertuples():
        print(f"  failed: {row.error}")

    data = load_dataset(features, label=cohort.outcome, biomarkers=cohort.biomarkers)
    lacking = lacking_mr(data)
    ids = data.X.index.astype(str)
    subsets = {
        "all": set(ids),
        "lacking MR": set(ids[lacking.to_numpy()]),
        "having MR": set(ids[~lacking.to_numpy()]),
    }
    manifest = pd.read_csv(cohort.manifest)
    with_mr = set(manifest.loc[manifest["modality"] == "MR", "patient_id"].astype(str))
    if subsets["having MR"] != with_mr & subsets["all"]:
        print("warning: patients with MR columns differ from those with MR in the manifest")
    models = make_models(data.groups, args.seed)
    print(f"groups: {', '.join(f'{g} ({len(c)})' for g, c in data.groups.items())}")
    print(f"models: {', '.join(models)}; {args.folds} folds x {args.repeats} repeats")

    predictions, times["cross_validation"] = timed_args_cv(models, data, args)

    started = time.perf_counter()
    scored = scored_patients(predictions)
    aucs = auc_table(predictions, subsets, scored, args.seed)
    complete = [m for m in models if scored.get(m, set()) >= subsets["all"]]
    pairs = [(m, REFERENCE) for m in CLAIMED if m in complete and REFERENCE in complete]
    comparisons = (
        compare_models(predictions[predictions["model"].isin([REFERENCE, *CLAIMED])], pairs)
        if pairs
        else []
    )
    times["summary"] = time.perf_counter() - started
    print()
    verdict = print_report(len(ids), subsets, scored, aucs, comparisons)
    print()
    print(
        "wall time: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in times.items())
        + f"; total {sum(times.values()):.1f} s"
    )

    predictions.to_csv(run_dir / "predictions.csv.gz", index=False)
    (run_dir / "summary.json").write_text(
        json.dumps(
            {
                "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "n_patients": len(ids),
                "lacking_mr": sorted(subsets["lacking MR"]),
                "scored": {m: len(s & subsets["all"]) for m, s in scored.items()},
                "roc_auc": aucs,
                "comparisons": comparisons,
                "beats_ct_only": verdict,
                "seconds": times,
            },
            indent=2,
            default=float,
        )
        + "\n"
    )
    print(f"results: {run_dir}")
    return 0 if all(verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
