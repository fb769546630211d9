""" "Does fusion help?": each fused model against the baselines a reviewer asks for, in plain words.

Built from what the report already has: its comparison rows (paired DeLong ΔAUC with a 95 %
Wald interval, :func:`radfusion.pipeline.validation.compare_models`) and its model summary (mean
ROC AUC per model). Each fused model is set against three references when the run has them:
the best single group (highest mean AUC among the single-group models, clinical included,
baselines excluded), the clinical-only model and the volume-only model
(:data:`radfusion.pipeline.columns.VOLUME_GROUP`). A fused model *helps* over a reference when
the lower bound of its ΔAUC interval is above 0; when no fused model does, the section says in
one sentence that fusion does not help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from radfusion.features.naming import CLINICAL_GROUP

from ..columns import CONTROL_GROUP, VOLUME_GROUP
from ._html import escape, finite_number, fmt, html_table, num_cell

__all__ = [
    "FUSION_BENEFIT_SECTION",
    "ROLES",
    "fusion_benefit",
    "fusion_benefit_html",
]

#: ``(html id, title)`` of the report section, for the report's navigation.
FUSION_BENEFIT_SECTION = ("fusion-benefit", "Does fusion help?")
#: The references, in the order they are reported, with how the text names them.
ROLES = {
    "best_single": "the best single group",
    "clinical": "the clinical-only model",
    "volume": "ROI volume alone",
}
_SHORT = {"best_single": "best single group", "clinical": "clinical-only", "volume": "volume-only"}
BETTER, WORSE, UNCLEAR = "better", "worse", "no clear difference"
_NOTE = (
    "ΔAUC = fused model − reference, paired on the same patients (DeLong), with its 95 % "
    "interval; a fused model helps when the whole interval is above 0. The best single group "
    "is chosen on the same predictions, which favours it; the intervals are not adjusted for "
    "the number of comparisons (the Holm-adjusted p-values are in the comparisons table)."
)


def fusion_benefit(
    tests: Sequence[Mapping[str, Any]],
    models: Mapping[str, Mapping[str, Any]],
    *,
    fused: Sequence[str],
    clinical: str = CLINICAL_GROUP,
    volume: str = VOLUME_GROUP,
    baselines: Sequence[str] = (VOLUME_GROUP, CONTROL_GROUP),
) -> dict[str, Any]:
    """Each fused model against the best single group, clinical-only and volume-only.

    Parameters
    ----------
    tests : sequence of mapping
        The report's comparison rows (``report["comparisons"]["tests"]``, from
        :func:`radfusion.pipeline.validation.compare_models`): ``model, reference, auc_model,
        auc_reference, difference, ci_low, ci_high`` and optionally ``p_holm``.
    models : mapping of str to mapping
        The model summary, in the report's model order: ``report["models"]`` (``{model:
        {"metrics": {"roc_auc": {"mean", ...}}}}``) or :func:`~radfusion.pipeline.validation.
        summarize`'s output (``{model: {"roc_auc": {"mean", ...}}}``).
    fused : sequence of str
        The fused models (``report["fused"]``, from ``CVResult.fused``).
    clinical, volume : str
        Names of the clinical-only and volume-only models.
    baselines : sequence of str
        Single models that are never "the best single group" (volume-only, negative control).

    Returns
    -------
    dict
        ``references``: ``{role: model name or None}`` for ``best_single``, ``clinical``,
        ``volume``; ``rows``: one per (fused model, reference) with ``model, reference,
        roles, auc_model, auc_reference, difference, ci_low, ci_high, p_holm, verdict``
        (``better`` / ``worse`` / ``no clear difference``), a reference that is two roles
        (e.g. the best single group is clinical) appearing once; ``missing``: the pairs the
        comparison rows lack; ``helps``: ``{role: bool}``, whether some fused model is better
        than that reference; ``sentences``: the plain-words summary, one per reference;
        ``note``: how to read it.
    """
    aucs = {name: _auc(entry) for name, entry in models.items()}
    fused = [m for m in models if m in set(fused)]
    singles = [m for m in models if m not in fused and m not in baselines]
    scored = [m for m in singles if aucs[m] is not None]
    best = max(scored, key=lambda m: aucs[m]) if scored else None  # first of equals wins
    references = {
        "best_single": best,
        "clinical": clinical if clinical in models else None,
        "volume": volume if volume in models else None,
    }
    roles: dict[str, list[str]] = {}  # reference model -> its roles, in ROLES order
    for role, name in references.items():
        if name is not None:
            roles.setdefault(name, []).append(role)
    by_pair = {(t["model"], t["reference"]): t for t in tests}
    rows, missing = [], []
    for reference, its_roles in roles.items():
        for model in fused:
            test = by_pair.get((model, reference))
            if test is None:
                missing.append(f"{model} vs {reference}")
                continue
            rows.append(
                {
                    "model": model,
                    "reference": reference,
                    "roles": list(its_roles),
                    **{
                        key: finite_number(test.get(key))
                        for key in (
                            "auc_model",
                            "auc_reference",
                            "difference",
                            "ci_low",
                            "ci_high",
                            "p_holm",
                        )
                    },
                    "verdict": _verdict(test),
                }
            )
    helps, sentences = {}, []
    for reference, its_roles in roles.items():
        compared = [r for r in rows if r["reference"] == reference]
        if not compared:
            continue
        better = [r for r in compared if r["verdict"] == BETTER]
        for role in its_roles:
            helps[role] = bool(better)
        sentences.append(_sentence(reference, its_roles, aucs[reference], better))
    return {
        "references": references,
        "rows": rows,
        "missing": missing,
        "helps": helps,
        "sentences": sentences,
        "note": _NOTE,
    }


def fusion_benefit_html(benefit: Mapping[str, Any]) -> str:
    """The report section of :func:`fusion_benefit`'s result: heading, sentences, table."""
    anchor, title = FUSION_BENEFIT_SECTION
    parts = [f'<h2 id="{anchor}">{escape(title)}</h2>']
    if not benefit["rows"]:
        parts.append(
            "<p>Not assessed: this run has no fused model compared with a single group, the "
            "clinical-only or the volume-only model.</p>"
        )
        return "".join(parts)
    parts += [f"<p>{escape(sentence)}</p>" for sentence in benefit["sentences"]]
    rows = [
        [
            f"<td>{escape(r['model'])}</td>",
            f"<td>{escape(r['reference'])} ({escape(_role_words(r['roles'], short=True))})</td>",
            num_cell(fmt(r["auc_model"])),
            num_cell(fmt(r["auc_reference"])),
            num_cell(f"{_signed(r['difference'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"),
            f"<td>{escape(r['verdict'])}</td>",
        ]
        for r in benefit["rows"]
    ]
    header = ["Fused model", "Reference", "AUC fused", "AUC reference", "ΔAUC [95 % CI]", "Verdict"]
    parts.append(f'<div class="scroll">{html_table(header, rows)}</div>')
    parts.append(f'<p class="muted">{escape(benefit["note"])}</p>')
    return "".join(parts)


def _auc(entry: Mapping[str, Any]) -> float | None:
    metrics = entry.get("metrics", entry)
    return finite_number((metrics.get("roc_auc") or {}).get("mean"))


def _verdict(test: Mapping[str, Any]) -> str:
    low, high = finite_number(test.get("ci_low")), finite_number(test.get("ci_high"))
    if low is not None and low > 0:
        return BETTER
    if high is not None and high < 0:
        return WORSE
    return UNCLEAR


def _role_words(roles: Sequence[str], *, short: bool = False) -> str:
    if short:
        return ", ".join(_SHORT[r] for r in roles)
    return " and ".join(ROLES[r] for r in roles)


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _sentence(
    reference: str, roles: Sequence[str], auc: float | None, better: Sequence[Mapping]
) -> str:
    what = f"{_role_words(roles)} ({reference}, AUC {fmt(auc)})"
    if not better:
        return (
            f"Fusion does not help over {what}: no fused model's AUC is clearly higher "
            "(every 95 % interval of the AUC difference includes 0 or lies below it)."
        )
    gains = "; ".join(
        f"{r['model']} {_signed(r['difference'])} (95 % CI {fmt(r['ci_low'])} to "
        f"{fmt(r['ci_high'])})"
        for r in better
    )
    return f"Fusion does better than {what}: AUC difference {gains}."
