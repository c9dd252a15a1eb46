"""Robustness paired per item: each Spider variant (Syn, Realistic, DK) against the same model's dev verdict on the
dev question it rewords, and whether a model's drop is larger than the baseline's on the same items.

The side-by-side table compares a variant only with the baseline on that variant, which cannot tell "the variant is
harder" from "this model got more brittle". Here every variant item is paired with its dev item
(:mod:`sqlshift.data.pairing`, carried as ``dev_index`` in the variant's rows, or recomputed from the study's data
folder for rows written before that field), so each model's drop is measured on the same questions reworded.
"""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as sps

from sqlshift.data.pairing import PAIRED_SPLITS, dev_pairing
from sqlshift.errors import DataError
from sqlshift.report.load import BenchResult, Model, Study, load_config
from sqlshift.report.render import Table
from sqlshift.report.stats import (ALPHA, BOOTSTRAP_REPS, BOOTSTRAP_SEED, DASH, bootstrap_means, fmt_ci, paired_test,
                                   pct, pts, pval)

Pair = tuple[dict[str, bool], dict[str, bool]]  # (dev verdicts, variant verdicts), both keyed by dev item id
Variant = tuple[str, str, dict[str, Pair]]  # (dev folder, variant folder, model key -> its Pair)


def method(reference: str) -> str:
    """How the drop differences are computed, against ``reference``."""
    return (f"per item d = (dev − variant verdict of the model) − (the same for {reference}), on the items both "
            f"have paired; CI: paired bootstrap over items ({BOOTSTRAP_REPS} reps, seed {BOOTSTRAP_SEED}); p: exact "
            "sign-flip permutation test of Σd (H0: on each item the two models' drops are exchangeable)")


def greedy_split(b: BenchResult) -> str | None:
    """The split of a greedy Spider result (None for other benchmarks and for voted ones)."""
    if b.benchmark != "spider" or "greedy_accuracy" in b.metrics:
        return None
    return str(b.metrics.get("split") or "") or None


def folders(study: Study) -> tuple[str | None, list[tuple[str, str]]]:
    """(the greedy Spider dev folder, [(variant folder, split)]): the specialty one first when it is dev."""
    found = {f: s for f in study.folders() if (m := study.meta(f)) and (s := greedy_split(m))}
    devs = [f for f, s in found.items() if s == "dev"]
    return (devs[0] if devs else None), [(f, s) for f, s in found.items() if s in PAIRED_SPLITS]


def data_root(study: Study) -> Path | None:
    """The study's data folder (for rows without ``dev_index``); None for the demo or when it is not here."""
    d = load_config(study.run_dir).get("data_dir")
    return Path(d) if isinstance(d, str) and d != "demo" and Path(d).is_dir() else None


def dev_ids(rows: list[dict[str, Any]], split: str, root: Path | None) -> dict[str, str] | None:
    """variant row id -> id of the dev item it rewords, for the paired rows; None when nothing says."""
    if rows and all("dev_index" in r for r in rows):
        return {str(r["id"]): str(r["dev_index"]) for r in rows if r["dev_index"] is not None}
    if root is None:
        return None
    try:
        pairs = dev_pairing(root, split).pairs
    except (DataError, OSError):
        return None
    return {str(r["id"]): str(pairs[int(r["index"])]) for r in rows
            if isinstance(r.get("index"), int) and r["index"] in pairs}


def paired_outcomes(model: Model, dev_f: str, var_f: str, split: str, root: Path | None) -> Pair | None:
    """The model's dev and variant verdicts on the paired items both benchmarks scored."""
    if dev_f not in model.benches or var_f not in model.benches:
        return None
    ids = dev_ids(model.benches[var_f].rows, split, root)
    if ids is None:
        return None
    dev = model.benches[dev_f].outcomes()
    var = {ids[i]: c for i, c in model.benches[var_f].outcomes().items() if i in ids}
    common = sorted(dev.keys() & var.keys())
    return {k: dev[k] for k in common}, {k: var[k] for k in common}


def drops(pair: Pair) -> dict[str, int]:
    """Per item: 1 when only the dev question was answered right, −1 when only the variant was, else 0."""
    dev, var = pair
    return {k: int(dev[k]) - int(var[k]) for k in dev}


def sign_flip_p(d: np.ndarray) -> float:
    """Exact two-sided p of Σd when each item's sign is flipped at random (d in −2..2: a sum of ±1 and ±2 terms)."""
    k1, k2 = int(np.sum(np.abs(d) == 1)), int(np.sum(np.abs(d) == 2))
    if k1 + k2 == 0:
        return 1.0
    t1 = 2 * np.arange(k1 + 1) - k1
    t2 = 2 * (2 * np.arange(k2 + 1) - k2)
    prob = np.multiply.outer(sps.binom.pmf(np.arange(k1 + 1), k1, 0.5),
                             sps.binom.pmf(np.arange(k2 + 1), k2, 0.5))
    total = np.add.outer(t1, t2)
    return float(min(1.0, prob[np.abs(total) >= abs(int(d.sum()))].sum()))


def drop_difference(pair: Pair, ref_pair: Pair, alpha: float) -> dict[str, Any] | None:
    """The model's drop minus a reference model's, in points, on the items both have paired: CI and exact p."""
    dm, dr = drops(pair), drops(ref_pair)
    common = sorted(dm.keys() & dr.keys())
    if not common:
        return None
    d = np.array([dm[k] - dr[k] for k in common], dtype=int)
    boot = 100.0 * bootstrap_means(d, BOOTSTRAP_REPS, np.random.default_rng(BOOTSTRAP_SEED))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    p = sign_flip_p(d)
    return {"n_paired": len(common), "drop_points": 100.0 * float(np.mean([dm[k] for k in common])),
            "reference_drop_points": 100.0 * float(np.mean([dr[k] for k in common])),
            "diff_points": 100.0 * float(d.mean()), "diff_ci95": [float(lo), float(hi)], "p_value": p,
            "significant": p < alpha}


def versus_baseline(pair: Pair, base_pair: Pair, alpha: float) -> dict[str, Any] | None:
    """:func:`drop_difference` against the baseline (summary.json calls the reference's drop
    ``baseline_drop_points``)."""
    out = drop_difference(pair, base_pair, alpha)
    if out is not None:
        out["baseline_drop_points"] = out.pop("reference_drop_points")
    return out


def entry(pair: Pair, base_pair: Pair | None, dev_f: str, alpha: float) -> dict[str, Any] | None:
    """One model on one variant: paired accuracies, Δ (variant − dev) with CI and McNemar, and vs the baseline."""
    t = paired_test(*pair, alpha)
    if t is None:
        return None
    n = t["n_paired"]
    return {"dev_benchmark": dev_f, "n_paired": n, "dev_accuracy": sum(pair[0].values()) / n,
            "variant_accuracy": sum(pair[1].values()) / n, "delta_points": t["diff_points"],
            "diff_ci95": t["diff_ci95"], "p_value": t["p_value"], "dev_only": t["a_only"],
            "variant_only": t["b_only"], "significant": t["significant"],
            "vs_baseline": versus_baseline(pair, base_pair, alpha) if base_pair is not None else None}


def variant_pairs(study: Study) -> list[Variant]:
    """Every paired variant split: (dev folder, variant folder, model key -> its paired verdicts). Computed once
    per report; the summary and the run-against-run tests both read it."""
    dev_f, variants = folders(study)
    if dev_f is None:
        return []
    root = data_root(study)
    return [(dev_f, var_f, {m.key: p for m in study.models if (p := paired_outcomes(m, dev_f, var_f, split, root))})
            for var_f, split in variants]


def robustness_summary(study: Study, variants: list[Variant], alpha: float = ALPHA) -> dict[str, dict[str, Any]]:
    """summary.json's ``robustness``: model -> variant folder -> :func:`entry` (empty without variants)."""
    base_key = study.baseline.key if study.baseline is not None else None
    out: dict[str, dict[str, Any]] = {}
    for dev_f, var_f, pairs in variants:
        base_pair = pairs.get(base_key) if base_key is not None else None
        for key, pair in pairs.items():
            e = entry(pair, base_pair if key != base_key else None, dev_f, alpha)
            if e is not None:
                out.setdefault(key, {})[var_f] = e
    return out


def robustness_pairwise(study: Study, variants: list[Variant], alpha: float = ALPHA) -> list[dict[str, Any]]:
    """summary.json's ``robustness_pairwise``: for every two final runs A, B and each variant, B's drop − A's drop
    on the items both have paired (is one fine-tune more brittle than another, not only than the baseline?)."""
    runs = [m.key for m in study.models if m.kind == "run"]
    out = []
    for _, var_f, pairs in variants:
        for a, b in combinations([k for k in runs if k in pairs], 2):
            if (d := drop_difference(pairs[b], pairs[a], alpha)) is not None:
                out.append({"a": a, "b": b, "variant": var_f, **d})
    return out


def robustness_table(summary: dict[str, Any]) -> Table | None:
    """One row per model and variant split, from ``summary["robustness"]``."""
    rows = []
    for key, per in (summary.get("robustness") or {}).items():
        for var_f, e in per.items():
            b = e["vs_baseline"]
            label = summary["benchmarks"].get(var_f, {}).get("label", var_f)
            rows.append([key, label, str(e["n_paired"]), pct(e["dev_accuracy"]), pct(e["variant_accuracy"]),
                         pts(e["delta_points"]), fmt_ci(e["diff_ci95"], scale=1.0), pval(e["p_value"]),
                         f"{pts(b['diff_points'])} {fmt_ci(b['diff_ci95'], scale=1.0)} (n={b['n_paired']})"
                         if b else DASH, pval(b["p_value"]) if b else DASH])
    if not rows:
        return None
    cols = ["Model", "Variant", "n paired", "EX on dev", "EX on variant", "Δ (variant − dev, pts)", "95% CI of Δ",
            "McNemar p", "drop − baseline's drop (pts) [95% CI]", "p (vs baseline)"]
    return Table("Robustness: each variant against the same model's dev answers", cols, rows, note=NOTE)


def robustness_pairwise_table(summary: dict[str, Any]) -> Table | None:
    """One row per two final runs and variant, from ``summary["robustness_pairwise"]``."""
    rows = [[f"{t['a']} vs {t['b']}", summary["benchmarks"].get(t["variant"], {}).get("label", t["variant"]),
             str(t["n_paired"]), pts(t["reference_drop_points"]), pts(t["drop_points"]), pts(t["diff_points"]),
             fmt_ci(t["diff_ci95"], scale=1.0), pval(t["p_value"])]
            for t in summary.get("robustness_pairwise") or []]
    if not rows:
        return None
    cols = ["Comparison (A vs B)", "Variant", "n paired", "A's drop (pts)", "B's drop (pts)",
            "B's drop − A's drop (pts)", "95% CI", "p"]
    return Table("Robustness, run against run: whose drop is larger", cols, rows,
                 note="Drop = EX on the dev questions − EX on their rewordings, each model on the same items; the "
                      f"difference is B's − A's: {method('A')}.")


NOTE = ("Each variant question is paired with the Spider dev question it rewords (same database and gold SQL; "
        "Syn by index, Realistic and DK by gold SQL in file order; ambiguous items and questions worded as on dev "
        "are left out), and scored against the same model's dev verdict: Δ's CI is Newcombe's paired interval, p "
        "the exact McNemar test. A positive 'drop − baseline's drop' means the model loses more than the baseline "
        f"on the reworded questions: {method('the baseline')}.")
