"""Seven log-likelihood multiple-choice generality tasks, prompts as in lm-evaluation-harness 0.4.13's task YAMLs.

Each class turns one row of its local file into the requests lm-eval builds for the same document (its
``doc_to_text``, ``doc_to_choice``, ``doc_to_target``); ``tests/test_general.py`` checks that lm-eval, run on the
same file through :mod:`sqlshift.benchmarks.lmeval_bridge`, makes identical per-item predictions. Headlines follow what the
field reports: ``acc_norm`` for HellaSwag, ARC and PIQA (the Open LLM Leaderboard), ``acc`` for the rest.
"""

from __future__ import annotations

import re
from typing import Any

from sqlshift.benchmarks.choice import ChoiceBenchmark, ChoiceItem, options_item, partial_item

#: the six-shot QA primer lm-eval's truthfulqa_mc1 puts before every question (TruthfulQA paper's "QA prompt")
TRUTHFULQA_PRIMER = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)


def hellaswag_clean(text: str) -> str:
    """lm-eval's HellaSwag ``preprocess``: WikiHow ``[title]`` markers become sentence ends, brackets go."""
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


class HellaSwag(ChoiceBenchmark):
    """Commonsense sentence completion (validation, 10042): ``<activity>: <context>`` then each ending."""

    name = "hellaswag"
    label = "HellaSwag"
    headline = "acc_norm"

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
        query = hellaswag_clean(row["activity_label"] + ": " + ctx)
        return options_item(str(index), query, [hellaswag_clean(e) for e in row["endings"]], int(row["label"]),
                            activity=row["activity_label"])


class ARCEasy(ChoiceBenchmark):
    """AI2 Reasoning Challenge, easy set (test, 2376): ``Question: ...\\nAnswer:`` then each answer text."""

    name = "arc_easy"
    label = "ARC-Easy"
    headline = "acc_norm"

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        return options_item(str(row["id"]), f"Question: {row['question']}\nAnswer:", row["choices"], row["gold"])


class ARCChallenge(ARCEasy):
    """AI2 Reasoning Challenge, challenge set (test, 1172): the questions retrieval and co-occurrence got wrong."""

    name = "arc_challenge"
    label = "ARC-Challenge"


class WinoGrande(ChoiceBenchmark):
    """Pronoun resolution (xl dev, 1267) by partial scoring: each option fills the blank, the rest is scored."""

    name = "winogrande"
    label = "WinoGrande"
    headline = "acc"

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        sentence = row["sentence"]
        blank = sentence.index("_")
        contexts = [sentence[:blank] + row["option1"], sentence[:blank] + row["option2"]]
        return partial_item(str(index), contexts, sentence[blank + 1:].strip(), {"1": 0, "2": 1}[str(row["answer"])])


class BoolQ(ChoiceBenchmark):
    """Yes/no questions on a Wikipedia passage (validation, 3270): `` no`` vs `` yes`` after ``Answer:``."""

    name = "boolq"
    label = "BoolQ"
    headline = "acc"
    option_texts = ("no", "yes")

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        text = f"{row['passage']}\nQuestion: {row['question']}?\nAnswer:"
        return options_item(str(index), text, list(self.option_texts), int(bool(row["answer"])))


class PIQA(ChoiceBenchmark):
    """Physical commonsense (validation, 1838): ``Question: <goal>\\nAnswer:`` then each of two solutions."""

    name = "piqa"
    label = "PIQA"
    headline = "acc_norm"

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        return options_item(str(index), f"Question: {row['goal']}\nAnswer:", [row["sol1"], row["sol2"]],
                            int(row["label"]))


class TruthfulQAMC1(ChoiceBenchmark):
    """TruthfulQA MC1 (817): after the six-shot QA primer, the one true answer among imitative falsehoods."""

    name = "truthfulqa_mc1"
    label = "TruthfulQA MC1"
    headline = "acc"

    def make_item(self, row: dict[str, Any], index: int) -> ChoiceItem:
        targets = row["mc1_targets"]
        options, labels = list(targets), list(targets.values())
        text = TRUTHFULQA_PRIMER + "\n\nQ: " + row["question"] + "\nA:"
        return options_item(str(index), text, options, labels.index(1))
