"""Which Spider dev question each robustness-variant item rewords: the pairing behind the per-item robustness test.

A variant item is paired with a dev item only when both ask for the same gold SQL on the same database and the
pairing is forced by the files themselves; anything ambiguous stays unpaired (and is counted), never guessed.

- ``syn``: Spider-Syn's dev.json follows Spider dev index by index, but from the release before the 2020 fixes:
  item i is paired with dev item i when the database and the normalised gold SQL agree (1002 of 1034; the 32 whose
  gold SQL the fixes changed ask for something else than today's dev item, so a dev verdict says nothing about them).
- ``realistic`` / ``dk``: items are grouped with dev items by (db_id, normalised gold SQL). Both files keep dev
  order, so when a group has as many variant items as dev items the pairing is forced in order (in Realistic, all
  145 such pairs whose question was left unchanged agree with it). Otherwise a variant item is paired only with the
  dev item asking the very same question (whitespace and case aside); the rest are unpaired (Realistic: 20 items
  whose SQL two dev questions share). Spider-DK's own databases (new_concert_singer, new_orchestra, new_pets_1)
  are not dev databases: their items never pair.

A pair whose question is worded exactly as the dev question (case, punctuation and spacing aside) is the same
example, not a variant of it, and is dropped: it would only dilute the change the rewording causes (Spider-Syn
left 153 questions without a synonym, Realistic 160 as they were, Spider-DK copied 206, mostly its T0 items).
On the shared data this pairs Syn 849 of 1034, Realistic 328 of 508, DK 52 of 535 (before the ``wta_1`` skips);
:func:`pairing_counts` says how many items each rule kept and dropped.
"""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlshift.data.spider import VARIANTS, read_json, resolve_variant_root

#: the splits that reword Spider dev questions (those with a pairing)
PAIRED_SPLITS = ("syn", "realistic", "dk")


def normalise_sql(query: str) -> str:
    """Gold SQL compared across files: case, runs of whitespace and a trailing semicolon do not count."""
    return " ".join(query.strip().rstrip(";").split()).lower()


def normalise_question(question: str) -> str:
    """Questions compared across files: case, punctuation and spacing do not count (``stadium ?`` = ``stadium?``)."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", question.lower()).split())


@dataclass
class Pairing:
    """variant index -> dev index, plus how many variant items each rule left unpaired and why."""

    split: str
    pairs: dict[int, int]
    unpaired: dict[str, int] = field(default_factory=dict)
    n_variant: int = 0

    def counts(self) -> dict[str, Any]:
        return {"split": self.split, "n_variant": self.n_variant, "n_paired": len(self.pairs),
                "unpaired": dict(self.unpaired)}


def _question(row: dict[str, Any], split: str) -> str:
    return str(row.get(VARIANTS[split][2]) or row.get("question") or "")


def _same_wording(var: dict[str, Any], dev: dict[str, Any], split: str) -> bool:
    return normalise_question(_question(var, split)) == normalise_question(str(dev.get("question") or ""))


def pair_by_index(variant: list[dict[str, Any]], dev: list[dict[str, Any]]) -> tuple[dict[int, int], dict[str, int]]:
    """Spider-Syn: item i with dev item i when database and gold SQL agree."""
    pairs, unpaired = {}, defaultdict(int)
    for i, v in enumerate(variant):
        d = dev[i] if i < len(dev) else None
        if d is None or d["db_id"] != v["db_id"]:
            unpaired["no dev item on the same database at this index"] += 1
        elif normalise_sql(d["query"]) != normalise_sql(v["query"]):
            unpaired["gold SQL differs from today's dev item (2020 dev fixes)"] += 1
        else:
            pairs[i] = i
    return pairs, dict(unpaired)


def pair_by_sql(variant: list[dict[str, Any]], dev: list[dict[str, Any]],
                split: str) -> tuple[dict[int, int], dict[str, int]]:
    """Realistic / DK: groups by (db_id, gold SQL); equal-size groups pair in order, others by identical question."""
    def groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
        g: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, r in enumerate(rows):
            g[(r["db_id"], normalise_sql(r["query"]))].append(i)
        return g

    dev_groups, pairs, unpaired = groups(dev), {}, defaultdict(int)
    for key, vs in groups(variant).items():
        ds = dev_groups.get(key, [])
        if not ds:
            unpaired["no dev item with this database and gold SQL"] += len(vs)
        elif len(ds) == len(vs):
            pairs.update(zip(vs, ds))
        else:
            free = list(ds)
            for v in vs:
                same = [d for d in free if normalise_question(_question(variant[v], split))
                        == normalise_question(dev[d]["question"])]
                if len(same) == 1:
                    pairs[v] = same[0]
                    free.remove(same[0])
                else:
                    unpaired["ambiguous: several dev questions share this gold SQL"] += 1
    return pairs, dict(unpaired)


def match_to_dev(variant: list[dict[str, Any]], dev: list[dict[str, Any]], split: str) -> Pairing:
    """The pairing of one variant file with dev.json (module docstring), identical wordings dropped."""
    if split not in PAIRED_SPLITS:
        raise ValueError(f"no dev pairing for split '{split}' (one of {', '.join(PAIRED_SPLITS)})")
    pairs, unpaired = pair_by_index(variant, dev) if split == "syn" else pair_by_sql(variant, dev, split)
    same = [v for v, d in pairs.items() if _same_wording(variant[v], dev[d], split)]
    for v in same:
        del pairs[v]
    if same:
        unpaired = {**unpaired, "worded as the dev question (not a variant)": len(same)}
    return Pairing(split, dict(sorted(pairs.items())), unpaired, len(variant))


@functools.lru_cache(maxsize=8)
def _cached(var_file: str, dev_file: str, split: str, stamp: tuple[int, int]) -> Pairing:
    return match_to_dev(read_json(Path(var_file)), read_json(Path(dev_file)), split)


def dev_pairing(root: str | Path, split: str) -> Pairing:
    """The pairing of ``split`` under a data folder (or Spider folder) laid out as :func:`load_spider` reads it."""
    var_dir, spider_dir = resolve_variant_root(Path(root), split)
    var_file, dev_file = var_dir / VARIANTS[split][1], spider_dir / VARIANTS["dev"][1]
    stamp = tuple(p.stat().st_mtime_ns if p.is_file() else 0 for p in (var_file, dev_file))
    return _cached(str(var_file), str(dev_file), split, stamp)  # type: ignore[arg-type]


def pairing_counts(root: str | Path) -> dict[str, dict[str, Any]]:
    """Per variant split under ``root``: items, pairs and the unpaired ones by reason (for docs and checks)."""
    return {s: dev_pairing(root, s).counts() for s in PAIRED_SPLITS}
