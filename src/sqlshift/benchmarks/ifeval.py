"""IFEval: verifiable instructions ("answer in under 300 words", "no commas"...), checked by lm-eval's checkers.

Generation is greedy from the prompt alone (in the chat template when the tokenizer has one, as
``lm_eval --apply_chat_template``), up to 1280 new tokens (lm-eval's ``ifeval``). Every instruction is then checked
by lm-eval 0.4.13's own ``test_instruction_following_strict`` / ``_loose`` (the authors' checkers), one instruction
at a time, so a checker that cannot run offline costs only its own instructions: nltk's ``punkt_tab`` (word
tokenizer) and ``punkt`` (sentence tokenizer) are data downloads that no PyPI package ships; when absent, the
instructions that need them are recorded as unscorable and left out of the instruction-level accuracies, and
prompts holding one are left out of the prompt-level ones (``metrics.json`` says which and how many).
Headline ``accuracy``: prompt-level strict.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from sqlshift.lm.api import LM, GenerateRequest, Generation
from sqlshift.benchmarks.generative import (GenerativeBenchmark, GenerativeSettings, chat_prompt, generation_health)
from sqlshift.data.general import read_general
from sqlshift.stats import accuracy_summary

#: nltk data the checkers load, and what a missing one disables
NLTK_RESOURCES: dict[str, str] = {"tokenizers/punkt_tab": "nltk.word_tokenize (change_case:capital_word_frequency)",
                                  "tokenizers/punkt": "sentence counting (length_constraints:number_sentences)"}


@contextlib.contextmanager
def no_nltk_download() -> Iterator[list[str]]:
    """lm-eval's ifeval module calls ``nltk.download('punkt_tab')`` on import; record the attempt, fetch nothing."""
    import nltk

    attempts: list[str] = []
    real = nltk.download
    nltk.download = lambda name, *a, **k: attempts.append(str(name)) or False  # type: ignore[assignment]
    try:
        yield attempts
    finally:
        nltk.download = real  # type: ignore[assignment]


def checkers() -> Any:
    """lm-eval's ifeval ``utils`` module (InputExample and the strict/loose tests), imported offline."""
    from sqlshift.benchmarks.lmeval_bridge import require_lm_eval

    require_lm_eval()
    with no_nltk_download(), contextlib.redirect_stdout(io.StringIO()):  # it prints "Downloaded punkt_tab" anyway
        from lm_eval.tasks.ifeval import utils
    return utils


def missing_nltk_data() -> list[str]:
    """nltk resources the checkers need that are not installed here."""
    import nltk

    missing = []
    for name in NLTK_RESOURCES:
        try:
            nltk.data.find(name)
        except LookupError:
            missing.append(name)
    return missing


def check_instructions(utils: Any, row: dict[str, Any], response: str) -> dict[str, list[bool | None]]:
    """Strict and loose verdict per instruction (None: its checker could not run, e.g. missing nltk data)."""
    out: dict[str, list[bool | None]] = {"strict": [], "loose": []}
    for iid, kwargs in zip(row["instruction_id_list"], row["kwargs"]):
        one = utils.InputExample(key=row["key"], instruction_id_list=[iid], prompt=row["prompt"], kwargs=[kwargs])
        for level, test in (("strict", utils.test_instruction_following_strict),
                            ("loose", utils.test_instruction_following_loose)):
            try:
                out[level].append(bool(test(one, response).follow_instruction_list[0]))
            except LookupError:  # nltk data not installed
                out[level].append(None)
    return out


class IFEvalSettings(GenerativeSettings):
    max_new_tokens: int = Field(1280, gt=0)
    chat: bool | None = None  # None: the chat template when the tokenizer has one


class IFEval(GenerativeBenchmark):
    """Instruction following, prompt- and instruction-level, strict and loose."""

    name = "ifeval"
    label = "IFEval"
    file_key = "ifeval"
    Settings: ClassVar[type[IFEvalSettings]] = IFEvalSettings
    settings: IFEvalSettings

    def check(self) -> list[str]:
        from sqlshift.errors import ConfigError

        problems = super().check()
        try:
            checkers()
        except ConfigError as e:
            problems.append(f"{self.name}: {e}")
        return problems

    def items(self) -> list[dict[str, Any]]:
        return [{**r, "id": str(r["key"])} for r in read_general("ifeval", self.path)]

    def render(self, item: dict[str, Any], tok: Any) -> str:
        chat = self.settings.chat
        if chat is None:
            chat = bool(getattr(tok, "chat_template", None))
        return chat_prompt(tok, item["prompt"]) if chat else item["prompt"]

    @contextlib.contextmanager
    def session(self, lm: LM, out_dir: Path) -> Iterator[None]:
        """lm-eval's IFEval checkers, imported once per evaluation (nltk downloads refused)."""
        self._utils = checkers()
        yield

    def request(self, item: dict[str, Any], lm: LM) -> GenerateRequest:
        return GenerateRequest(self.render(item, lm.tokenizer), self.settings.max_new_tokens, ())

    def counted(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Prompts whose every instruction could be checked (some need nltk data that may be missing)."""
        return [r for r in rows if r["scorable"]]

    def row(self, item: dict[str, Any], gen: Generation) -> dict[str, Any]:
        verdicts = check_instructions(self._utils, item, gen.text)
        scorable = all(v is not None for v in verdicts["strict"] + verdicts["loose"])
        return {"id": item["id"], "correct": scorable and all(verdicts["strict"]),
                "correct_loose": scorable and all(verdicts["loose"]), "scorable": scorable,
                "instruction_id_list": item["instruction_id_list"], "inst_strict": verdicts["strict"],
                "inst_loose": verdicts["loose"], "response": gen.text, "n_tokens": gen.n_tokens,
                "hit_limit": gen.hit_limit}

    def summary(self, rows: Sequence[dict[str, Any]], items: Sequence[Any], lm: LM | None) -> dict[str, Any]:
        """Prompt-level over scorable prompts (headline: strict), instruction-level over scorable instructions."""
        scored = [r for r in rows if r["scorable"]]
        inst: dict[str, list[bool]] = {"strict": [], "loose": []}
        unscorable: dict[str, int] = {}
        for r in rows:
            for iid, st, lo in zip(r["instruction_id_list"], r["inst_strict"], r["inst_loose"]):
                if st is None or lo is None:
                    unscorable[iid] = unscorable.get(iid, 0) + 1
                else:
                    inst["strict"].append(st)
                    inst["loose"].append(lo)
        loose = accuracy_summary([bool(r["correct_loose"]) for r in scored])
        own = {"headline": "prompt_level_strict_acc", "prompt_level_strict_acc": None,
               "prompt_level_loose_acc": loose["accuracy"] if scored else None,
               "inst_level_strict_acc": sum(inst["strict"]) / len(inst["strict"]) if inst["strict"] else None,
               "inst_level_loose_acc": sum(inst["loose"]) / len(inst["loose"]) if inst["loose"] else None,
               "n_instructions": len(inst["strict"]), "n_prompts_unscorable": len(rows) - len(scored),
               "unscorable_instructions": unscorable, "nltk_missing": missing_nltk_data(),
               "chat": self.settings.chat, "generation": generation_health(rows), "lm_eval_task": "ifeval"}
        own["prompt_level_strict_acc"] = accuracy_summary([bool(r["correct"]) for r in scored])["accuracy"] \
            if scored else None
        return own
