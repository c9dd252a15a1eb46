"""MMLU in the authors' CSV layout: loading, subject -> category, the seed preset, few-shot and replay data.

Files are ``<mmlu_dir>/{dev,val,test}/<subject>_<split>.csv``, header-less rows ``question,A,B,C,D,answer``.
They are read with a real CSV parser because questions hold commas, quotes and newlines; a malformed row raises
a :class:`DataError` naming the file and line, so a bad copy never turns into a silently wrong accuracy.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlshift.errors import ConfigError, DataError

log = logging.getLogger(__name__)

LETTERS: tuple[str, str, str, str] = ("A", "B", "C", "D")
SPLITS: tuple[str, ...] = ("dev", "val", "test")
HUB_SPLITS: dict[str, str] = {"dev": "dev", "val": "validation", "validation": "validation", "test": "test"}

#: the three subjects the extended study sampled, 50 questions each, seed 42
SEED_SUBJECTS: tuple[str, ...] = ("high_school_computer_science", "philosophy", "high_school_macroeconomics")
SEED_N = 50
SEED = 42

#: subject -> subcategory, as in categories.py of hendrycks/test
SUBCATEGORIES: dict[str, str] = {
    "abstract_algebra": "math", "anatomy": "health", "astronomy": "physics", "business_ethics": "business",
    "clinical_knowledge": "health", "college_biology": "biology", "college_chemistry": "chemistry",
    "college_computer_science": "computer science", "college_mathematics": "math", "college_medicine": "health",
    "college_physics": "physics", "computer_security": "computer science", "conceptual_physics": "physics",
    "econometrics": "economics", "electrical_engineering": "engineering", "elementary_mathematics": "math",
    "formal_logic": "philosophy", "global_facts": "other", "high_school_biology": "biology",
    "high_school_chemistry": "chemistry", "high_school_computer_science": "computer science",
    "high_school_european_history": "history", "high_school_geography": "geography",
    "high_school_government_and_politics": "politics", "high_school_macroeconomics": "economics",
    "high_school_mathematics": "math", "high_school_microeconomics": "economics", "high_school_physics": "physics",
    "high_school_psychology": "psychology", "high_school_statistics": "math", "high_school_us_history": "history",
    "high_school_world_history": "history", "human_aging": "health", "human_sexuality": "culture",
    "international_law": "law", "jurisprudence": "law", "logical_fallacies": "philosophy",
    "machine_learning": "computer science", "management": "business", "marketing": "business",
    "medical_genetics": "health", "miscellaneous": "other", "moral_disputes": "philosophy",
    "moral_scenarios": "philosophy", "nutrition": "health", "philosophy": "philosophy", "prehistory": "history",
    "professional_accounting": "other", "professional_law": "law", "professional_medicine": "health",
    "professional_psychology": "psychology", "public_relations": "politics", "security_studies": "politics",
    "sociology": "culture", "us_foreign_policy": "politics", "virology": "health", "world_religions": "philosophy",
}

#: subcategory -> category, as in categories.py of hendrycks/test ("other (business, health, misc.)" -> "other")
CATEGORY_OF_SUBCATEGORY: dict[str, str] = {
    **{s: "STEM" for s in ("physics", "chemistry", "biology", "computer science", "math", "engineering")},
    **{s: "humanities" for s in ("history", "philosophy", "law")},
    **{s: "social sciences" for s in ("politics", "culture", "economics", "geography", "psychology")},
    **{s: "other" for s in ("other", "business", "health")},
}

SUBJECTS: tuple[str, ...] = tuple(sorted(SUBCATEGORIES))
#: the embedded demo quiz (written for sqlshift, MMLU's CSV layout) maps onto the same categories
DEMO_SUBCATEGORIES: dict[str, str] = {"general_science": "physics", "world_geography": "geography",
                                      "everyday_math": "math"}
CATEGORIES: dict[str, str] = {s: CATEGORY_OF_SUBCATEGORY[sub]
                              for s, sub in {**SUBCATEGORIES, **DEMO_SUBCATEGORIES}.items()}
CATEGORY_NAMES: tuple[str, ...] = ("STEM", "humanities", "social sciences", "other")


@dataclass(frozen=True)
class MMLUQuestion:
    """One MMLU question. ``index`` is its 0-based row in its file (stable id for resume and sampling)."""

    subject: str
    index: int
    question: str
    choices: tuple[str, str, str, str]
    answer: str  # "A".."D"
    split: str = "test"

    @property
    def category(self) -> str:
        return CATEGORIES.get(self.subject, "other")

    @property
    def answer_index(self) -> int:
        return LETTERS.index(self.answer)

    @property
    def answer_text(self) -> str:
        return self.choices[self.answer_index]

    @property
    def key(self) -> tuple[str, int]:
        """Identity within one evaluation (used to skip already scored questions)."""
        return (self.subject, self.index)


def subject_name(subject: str) -> str:
    """``high_school_macroeconomics`` -> ``high school macroeconomics`` (as the few-shot header writes it)."""
    return subject.replace("_", " ")


def question_block(q: MMLUQuestion) -> str:
    """Question and lettered choices, no answer cue: the user message of chat prompts and of replay examples."""
    lines = [q.question.strip()] + [f"{L}. {c}" for L, c in zip(LETTERS, q.choices)]
    return "\n".join(lines)


# ---------------------------------------------------------------- files


def default_mmlu_dir() -> Path | None:
    """``$SQLSHIFT_DATA_DIR/mmlu`` when that variable is set."""
    d = os.environ.get("SQLSHIFT_DATA_DIR")
    return Path(d) / "mmlu" if d else None


def resolve_mmlu_dir(mmlu_dir: str | Path | None) -> Path:
    """Accept the ``mmlu`` folder itself or a data folder holding ``mmlu/``; fail with the fix otherwise."""
    if mmlu_dir is None:
        mmlu_dir = default_mmlu_dir()
        if mmlu_dir is None:
            raise ConfigError("no MMLU folder given", "pass --mmlu-dir or set SQLSHIFT_DATA_DIR")
    p = Path(mmlu_dir).expanduser()
    if not any((p / s).is_dir() for s in SPLITS) and (p / "mmlu").is_dir():
        p = p / "mmlu"
    if not p.is_dir():
        raise DataError(f"MMLU folder {p} does not exist",
                        "pass the folder holding dev/ val/ test/ (the authors' data.tar layout)")
    return p


def read_mmlu_csv(path: Path, subject: str, split: str = "test") -> list[MMLUQuestion]:
    """Parse one CSV file; wrong column count or answer letter raises DataError with file and line."""
    if not path.is_file():
        raise DataError(f"MMLU file {path} does not exist",
                        f"check --mmlu-dir and that '{subject}' has a {split} split")
    out: list[MMLUQuestion] = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        start = 1
        try:
            for row in reader:
                line, start = start, reader.line_num + 1
                if not row:  # blank line (e.g. a trailing one): not a question
                    continue
                out.append(parse_row(row, path, line, subject, split, len(out)))
        except csv.Error as e:
            raise DataError(f"{path}:{reader.line_num}: unreadable CSV ({e})",
                            "restore the file from the MMLU release") from e
        except UnicodeDecodeError as e:  # raised while reading ahead, so the line is approximate
            raise DataError(f"{path}: not UTF-8 text near line {reader.line_num + 1} ({e.reason})",
                            "save it as UTF-8; restore the file from the MMLU release") from e
    return out


def parse_row(row: list[str], path: Path, line: int, subject: str, split: str, index: int) -> MMLUQuestion:
    """One CSV row -> question, checking the 6 fields and the answer letter."""
    if len(row) != 6:
        raise DataError(f"{path}:{line}: expected 6 fields (question,A,B,C,D,answer), got {len(row)}",
                        "quote fields holding commas; restore the file from the MMLU release")
    if any("\x00" in field for field in row):
        raise DataError(f"{path}:{line}: holds NUL bytes (a binary file?)", "restore the file from the MMLU release")
    answer = row[5].strip()
    if answer not in LETTERS:
        raise DataError(f"{path}:{line}: answer {row[5]!r} is not one of A, B, C, D",
                        "fix the last field of that row; restore the file from the MMLU release")
    return MMLUQuestion(subject, index, row[0], (row[1], row[2], row[3], row[4]), answer, split)


def load_mmlu(mmlu_dir: str | Path | None, subjects: Iterable[str] | str, split: str = "test") -> list[MMLUQuestion]:
    """All questions of ``subjects`` (names, or a spec for :func:`resolve_subjects`) from one split."""
    if split not in SPLITS:
        raise ConfigError(f"unknown MMLU split '{split}'", f"use one of {', '.join(SPLITS)}")
    names = resolve_subjects(subjects) if isinstance(subjects, str) else check_subjects(subjects)
    root = resolve_mmlu_dir(mmlu_dir)
    out: list[MMLUQuestion] = []
    for s in names:
        out.extend(read_mmlu_csv(root / split / f"{s}_{split}.csv", s, split))
    return out


# ---------------------------------------------------------------- subjects and the seed preset


def check_subjects(subjects: Iterable[str]) -> list[str]:
    """Validate names (order kept, duplicates dropped); an unknown one gets a close-match suggestion."""
    out: list[str] = []
    for s in subjects:
        s = s.strip()
        if s not in CATEGORIES:
            close = difflib.get_close_matches(s, SUBJECTS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "see sqlshift.data.mmlu.SUBJECTS"
            raise ConfigError(f"unknown MMLU subject '{s}'", hint)
        if s not in out:
            out.append(s)
    if not out:
        raise ConfigError("no MMLU subjects given", "use seed, all, or a comma-separated list of subjects")
    return out


def subjects_in(mmlu_dir: str | Path, split: str = "test") -> list[str]:
    """Subjects with a ``<split>/<subject>_<split>.csv`` file in a folder (sorted)."""
    root = resolve_mmlu_dir(mmlu_dir)
    return sorted(p.name[: -len(f"_{split}.csv")] for p in (root / split).glob(f"*_{split}.csv"))


def resolve_subjects(spec: str | Sequence[str], mmlu_dir: str | Path | None = None, split: str = "test") -> list[str]:
    """``"seed"`` -> the 3 seed subjects, ``"all"`` -> all 57 (or, given ``mmlu_dir``, every subject found there),
    a category name -> its subjects, ``"a,b"`` -> those."""
    if not isinstance(spec, str):
        return check_subjects(spec)
    key = spec.strip().lower()
    if key == "seed":
        return list(SEED_SUBJECTS)
    if key == "all":
        found = subjects_in(mmlu_dir, split) if mmlu_dir is not None else []
        return check_subjects(found) if found else list(SUBJECTS)
    cats = {c.lower().replace(" ", "_"): c for c in CATEGORY_NAMES}
    if key.replace(" ", "_") in cats:  # a category name: all its subjects
        cat = cats[key.replace(" ", "_")]
        return [s for s in SUBJECTS if CATEGORIES[s] == cat]
    return check_subjects(x for x in spec.split(",") if x.strip())


def seed_sample(questions: Sequence[MMLUQuestion], n: int = SEED_N, seed: int = SEED) -> list[MMLUQuestion]:
    """``n`` questions per subject: ``random.Random(seed).sample`` over the file's rows, sorted by index.

    A fresh generator per subject makes a subject's sample independent of which other subjects are loaded.
    """
    by_subject: dict[str, list[MMLUQuestion]] = {}
    for q in questions:
        by_subject.setdefault(q.subject, []).append(q)
    out: list[MMLUQuestion] = []
    for subject, qs in by_subject.items():
        qs.sort(key=lambda q: q.index)  # the sample depends on the file, not on the order questions came in
        if len(qs) <= n:
            log.warning("MMLU %s has %d questions, fewer than %d: taking all", subject, len(qs), n)
            out.extend(qs)
            continue
        picked = sorted(random.Random(seed).sample(range(len(qs)), n))
        out.extend(qs[i] for i in picked)
    return out


def question_indices(questions: Iterable[MMLUQuestion]) -> dict[str, list[int]]:
    """``{subject: [row indices]}``: what metrics.json lists as ``questions`` when a sample was evaluated."""
    out: dict[str, list[int]] = {}
    for q in questions:
        out.setdefault(q.subject, []).append(q.index)
    return out


def load_seed_preset(mmlu_dir: str | Path | None, split: str = "test") -> list[MMLUQuestion]:
    """The extended study's protocol: 50 questions each of the 3 seed subjects, seed 42."""
    return seed_sample(load_mmlu(mmlu_dir, list(SEED_SUBJECTS), split), SEED_N, SEED)


def load_fewshot(mmlu_dir: str | Path | None, subjects: Iterable[str],
                 k: int) -> tuple[dict[str, list[MMLUQuestion]], str]:
    """First ``k`` dev questions per subject, and a note saying where they came from.

    Without a dev split the evaluation is 0-shot, and the note says so (never a silent change of protocol).
    """
    if k <= 0:
        return {}, "0-shot (k_shot=0)"
    root = resolve_mmlu_dir(mmlu_dir)
    if not (root / "dev").is_dir():
        log.warning("no dev split under %s: evaluating 0-shot instead of %d-shot", root, k)
        return {}, f"0-shot (no dev split under {root}; {k}-shot requested)"
    shots: dict[str, list[MMLUQuestion]] = {}
    missing: list[str] = []
    for s in subjects:
        path = root / "dev" / f"{s}_dev.csv"
        if path.is_file():
            shots[s] = read_mmlu_csv(path, s, "dev")[:k]
        else:
            missing.append(s)
    note = f"{k}-shot from the dev split"
    if missing:
        note += f"; 0-shot for {', '.join(missing)} (no dev file)"
    return shots, note


# ---------------------------------------------------------------- replay (forgetting mitigation)


def held_out_subjects(eval_subjects: Iterable[str]) -> list[str]:
    """All subjects not evaluated: the pool replay data may come from without leaking into the evaluation."""
    taken = set(check_subjects(eval_subjects))
    return [s for s in SUBJECTS if s not in taken]


def replay_example(q: MMLUQuestion) -> dict[str, str]:
    """``{"prompt": question + lettered choices, "completion": "B. <answer text>"}`` for SFT mixing."""
    return {"prompt": question_block(q), "completion": f"{q.answer}. {q.answer_text}"}


def mmlu_replay_examples(mmlu_dir: Path | str | None, subjects: list[str], n: int, seed: int, split: str = "val",
                         *, exclude: Iterable[str] | None = None) -> list[dict[str, str]]:
    """``n`` replay examples drawn with ``seed`` from ``subjects``; ConfigError when they overlap ``exclude``.

    Pass the evaluation subjects as ``exclude``: replaying an evaluated subject would hide forgetting.
    """
    names = check_subjects(subjects)
    overlap = sorted(set(names) & set(exclude or ()))
    if overlap:
        raise ConfigError(f"replay subjects overlap the evaluation subjects: {', '.join(overlap)}",
                          "draw replay data from held_out_subjects(eval_subjects)")
    if n <= 0:
        return []
    pool = load_mmlu(mmlu_dir, names, split)
    if n > len(pool):
        raise ConfigError(f"asked for {n} replay examples but {len(names)} subjects hold only {len(pool)} "
                          f"{split} questions", "lower the replay count or add subjects")
    picked = random.Random(seed).sample(range(len(pool)), n)
    return [replay_example(pool[i]) for i in picked]
