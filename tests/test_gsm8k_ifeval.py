"""GSM8K (prompt, answer extraction, scoring, chat variant, resume) and IFEval (strict vs loose, unscorable
instructions), each checked against lm-evaluation-harness where it is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from general_lm import ScriptedLM
from sqlshift.benchmarks.api import get_benchmark
from sqlshift.benchmarks import gsm8k as G
from sqlshift.data.general import FILES
from sqlshift.errors import ConfigError, EmptyPredictions

QUESTIONS = [("Tom has 3 apples and buys 4 more. How many apples?", "3+4=<<3+4=7>>7\n#### 7"),
             ("A box holds 1,200 pens; 200 are sold. How many remain?", "1200-200=<<1200-200=1000>>1000\n#### 1,000"),
             ("Sue earns $5 an hour for 3 hours. How much?", "5*3=<<5*3=15>>15\n#### 15"),
             ("A rope of 10 m loses 12.5 m? Give the change.", "10-12.5=-2.5\n#### -2.5"),
             ("How many legs do 2 dogs have?", "2*4=<<2*4=8>>8\n#### 8"),
             ("What is 6 times 7?", "6*7=42\n#### 42"),
             ("Half of 30?", "30/2=15\n#### 15")]

#: response -> (strict extraction, flexible extraction)
EXTRACTIONS = {
    "She has 3+4=7 apples.\n#### 7": ("7", "7"),
    "So the total is $1,000.": ("[invalid]", "$1,000."),
    "#### 1,000\nQuestion": ("1,000", "1,000"),
    "The change is -2.5 m, i.e. #### -2.5.": ("-2.5.", "-2.5."),
    "no numbers at all": ("[invalid]", "[invalid]"),
    "I think 8 and then 9": ("[invalid]", "9"),
    "#### 15 dollars, not 16": ("15", "16"),
    "": ("[invalid]", "[invalid]"),
}


def write_gsm8k(root: Path) -> Path:
    path = root / "general" / FILES["gsm8k"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n"
                            for i, (q, a) in enumerate(QUESTIONS)))
    return path


def bench(name: str, root: Path, **settings: Any) -> Any:
    cls = get_benchmark(name)
    return cls(cls.Settings(benchmark=name, **settings), root)


def answer_for(prompt: str) -> str:
    """The scripted model: right on every question except the last, where it forgets the '####'."""
    last_q = prompt.rsplit("Question: ", 1)[-1] if "Question: " in prompt else prompt
    for i, (q, a) in enumerate(QUESTIONS):
        if q in last_q:
            number = a.split("#### ")[-1]
            return f"Working it out.\nThe answer is {number}" if i == len(QUESTIONS) - 1 else f"Steps.\n#### {number}"
    raise AssertionError(f"unknown prompt {prompt[-80:]!r}")


@pytest.mark.parametrize("response", list(EXTRACTIONS))
def test_gsm8k_extraction(response: str) -> None:
    assert (G.extract_strict(response), G.extract_flexible(response)) == EXTRACTIONS[response]


def test_gsm8k_exact_match_ignores_commas_dollars_and_final_period() -> None:
    assert G.exact_match("$1,000.", "1200-200=1000\n#### 1,000")
    assert G.exact_match("-2.5.", "#### -2.5")
    assert not G.exact_match("[invalid]", "#### 7") and not G.exact_match("70", "#### 7")


def test_gsm8k_extraction_agrees_with_lm_eval() -> None:
    pytest.importorskip("lm_eval")
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter

    responses = list(EXTRACTIONS)
    strict = [r[0] for r in RegexFilter(r"#### (\-?[0-9\.\,]+)").apply([[r] for r in responses], [])]
    flexible = [r[0] for r in RegexFilter(r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1).apply(
        [[r] for r in responses], [])]
    assert strict == [G.extract_strict(r) for r in responses]
    assert flexible == [G.extract_flexible(r) for r in responses]
    for pred in strict + flexible + ["7", "$7.", "1,000"]:
        for _, gold in QUESTIONS:
            theirs = exact_match_hf_evaluate([pred], [gold], regexes_to_ignore=list(G.IGNORE), ignore_case=True)
            assert bool(theirs["exact_match"]) == G.exact_match(pred, gold), (pred, gold)


def test_gsm8k_five_shot_prompt_and_scoring(tmp_path: Path) -> None:
    write_gsm8k(tmp_path)
    b = bench("gsm8k", tmp_path)
    lm = ScriptedLM(reply=answer_for)
    m = b.evaluate(lm, tmp_path / "out")
    req = lm.requests[0]
    assert req.stop == ("Question:", "</s>", "<|im_end|>") and req.max_new_tokens == 256
    blocks = req.prompt.split("\n\n")
    assert len(blocks) == 6 and all(b_.startswith("Question: ") and "\nAnswer: " in b_ for b_ in blocks[:5])
    assert blocks[-1] == f"Question: {QUESTIONS[0][0]}\nAnswer:" and QUESTIONS[0][0] not in "".join(blocks[:5])
    assert "#### " in blocks[0]  # exemplars carry the full worked solution
    assert m["accuracy"] == pytest.approx(6 / 7) and m["accuracy_flexible"] == 1.0
    assert m["headline"] == "strict-match" and m["generation"]["extraction_failures_strict"] == 1
    assert m["generation"]["n"] == 7 and m["generation"]["hit_limit"] == 0 and m["num_fewshot"] == 5
    again = ScriptedLM(reply=answer_for)
    b2 = bench("gsm8k", tmp_path)
    b2.evaluate(again, tmp_path / "fresh")
    assert again.requests[0].prompt == req.prompt  # exemplars are seeded per item


def test_gsm8k_resumes_and_flags_empty_output(tmp_path: Path) -> None:
    write_gsm8k(tmp_path)
    b = bench("gsm8k", tmp_path, chunk=3, num_fewshot=0)
    seen: list[str] = []

    def flaky(prompt: str) -> str:
        if len(seen) == 3:
            raise RuntimeError("interrupted")
        seen.append(prompt)
        return answer_for(prompt)

    with pytest.raises(RuntimeError):
        b.evaluate(ScriptedLM(reply=flaky), tmp_path / "out")
    lm = ScriptedLM(reply=answer_for)
    m = b.evaluate(lm, tmp_path / "out")
    assert len(lm.requests) == 4 and m["n"] == 7 and m["complete"]
    empty = b.evaluate(ScriptedLM(reply=lambda p: ""), tmp_path / "empty")
    assert empty["accuracy"] == 0.0 and isinstance(b.problems(empty)[0], EmptyPredictions)


def test_gsm8k_chat_renders_the_template(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    write_gsm8k(tmp_path)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    b = bench("gsm8k_chat", tmp_path)
    lm = ScriptedLM(reply=lambda p: "We add.\nThe answer is 7" if "apples" in p else "#### 0", tokenizer=tok)
    m = b.evaluate(lm, tmp_path / "out")
    prompt = lm.requests[0].prompt
    assert "<|im_start|>user" in prompt and prompt.rstrip().endswith("<|im_start|>assistant")
    assert "Question:" not in prompt and "#### <number>" in prompt and lm.requests[0].stop == ()
    assert m["headline"] == "flexible-extract" and m["n_correct"] == 1 and m["accuracy_strict"] == 0.0
    with pytest.raises(ConfigError, match="chat template"):
        bench("gsm8k_chat", tmp_path).evaluate(ScriptedLM(reply=lambda p: "", tokenizer=object()), tmp_path / "x")


def test_gsm8k_zero_shot_agrees_with_lm_eval(tmp_path: Path) -> None:
    """lm-eval's own gsm8k task (0-shot, on the same file, through the adapter) gives the same prompts and
    the same strict and flexible verdicts on the same generations."""
    pytest.importorskip("lm_eval")
    from sqlshift.benchmarks import lmeval_bridge as bridge

    path = write_gsm8k(tmp_path)
    b = bench("gsm8k", tmp_path, num_fewshot=0)
    ours_lm, their_lm = ScriptedLM(reply=answer_for), ScriptedLM(reply=answer_for)
    b.evaluate(ours_lm, tmp_path / "out")
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    out = bridge.run_lmeval(bridge.adapter(their_lm), [bridge.task_config("gsm8k", path, num_fewshot=0)])
    assert [r.prompt for r in their_lm.requests] == [r.prompt for r in ours_lm.requests]
    assert {r.stop for r in their_lm.requests} == {G.STOPS}
    verdicts = {(s["filter"], str(s["doc"]["id"])): bool(s["exact_match"]) for s in out["samples"]["gsm8k"]}
    assert verdicts == {**{("strict-match", i): r["correct"] for i, r in rows.items()},
                        **{("flexible-extract", i): r["correct_flexible"] for i, r in rows.items()}}


# ---------------------------------------------------------------- IFEval

IFEVAL_ROWS = [
    {"key": 1, "prompt": "Write about cats in lowercase only.", "instruction_id_list": ["change_case:english_lowercase"],
     "kwargs": [{}]},
    {"key": 2, "prompt": "Describe rain without commas, in at least 5 words.",
     "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
     "kwargs": [{}, {"relation": "at least", "num_words": 5}]},
    {"key": 3, "prompt": "Give a title in double angular brackets.", "instruction_id_list": ["detectable_format:title"],
     "kwargs": [{}]},
    {"key": 4, "prompt": "Answer in exactly 2 sentences.", "instruction_id_list": ["length_constraints:number_sentences"],
     "kwargs": [{"relation": "less than", "num_sentences": 3}]},
]
IFEVAL_REPLIES = {
    1: "Sure! Here it is:\ncats are soft and they sleep all day",  # strict: capital S fails; loose drops line 1
    2: "Rain falls softly on the quiet town, washing streets clean",  # a comma: fails both ways
    3: "<<Morning Song>>\nA short poem.",  # passes both
    4: "It rains. It pours.",
}


def write_ifeval(root: Path) -> Path:
    path = root / "general" / FILES["ifeval"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in IFEVAL_ROWS))
    return path


def ifeval_reply(prompt: str) -> str:
    return next(IFEVAL_REPLIES[r["key"]] for r in IFEVAL_ROWS if r["prompt"] in prompt)


def test_ifeval_strict_vs_loose(tmp_path: Path) -> None:
    pytest.importorskip("lm_eval")
    from sqlshift.benchmarks.ifeval import missing_nltk_data

    write_ifeval(tmp_path)
    b = bench("ifeval", tmp_path, chat=False)
    lm = ScriptedLM(reply=ifeval_reply)
    m = b.evaluate(lm, tmp_path / "out")
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "out" / "results.jsonl").read_text().splitlines())}
    assert lm.requests[0].prompt == IFEVAL_ROWS[0]["prompt"] and lm.requests[0].max_new_tokens == 1280
    assert (rows["1"]["correct"], rows["1"]["correct_loose"]) == (False, True)
    assert rows["2"]["inst_strict"] == [False, True] and rows["2"]["correct_loose"] is False
    assert (rows["3"]["correct"], rows["3"]["correct_loose"]) == (True, True)
    assert m["headline"] == "prompt_level_strict_acc" and m["accuracy"] == m["prompt_level_strict_acc"]
    from sqlshift.benchmarks.ifeval import checkers

    for row in IFEVAL_ROWS[:3]:  # lm-eval's own process_results on the whole prompt gives the same verdicts
        theirs = checkers().process_results(row, [IFEVAL_REPLIES[row["key"]]])
        mine = rows[str(row["key"])]
        assert (theirs["prompt_level_strict_acc"], theirs["prompt_level_loose_acc"]) == (mine["correct"],
                                                                                        mine["correct_loose"])
        assert (theirs["inst_level_strict_acc"], theirs["inst_level_loose_acc"]) == (mine["inst_strict"],
                                                                                    mine["inst_loose"])
    if "tokenizers/punkt" in missing_nltk_data():  # sentence counting needs nltk data no PyPI package ships
        assert rows["4"]["scorable"] is False and rows["4"]["inst_strict"] == [None]
        assert m["unscorable_instructions"] == {"length_constraints:number_sentences": 1}
        assert m["n"] == 3 and m["n_prompts_unscorable"] == 1 and m["n_requested"] == 4
        assert m["accuracy"] == pytest.approx(1 / 3) and m["prompt_level_loose_acc"] == pytest.approx(2 / 3)
        assert m["inst_level_strict_acc"] == pytest.approx(2 / 4) and m["inst_level_loose_acc"] == pytest.approx(3 / 4)
    else:
        assert rows["4"]["correct"] is True and m["n"] == 4


def test_ifeval_uses_the_chat_template_when_there_is_one(tmp_path: Path, tiny_model_dir: Path) -> None:
    pytest.importorskip("lm_eval")
    from transformers import AutoTokenizer

    write_ifeval(tmp_path)
    lm = ScriptedLM(reply=ifeval_reply, tokenizer=AutoTokenizer.from_pretrained(tiny_model_dir))
    m = bench("ifeval", tmp_path, sample=2, max_new_tokens=64).evaluate(lm, tmp_path / "out")
    assert lm.requests[0].prompt.startswith("<|im_start|>") and lm.requests[0].max_new_tokens == 64
    assert m["n_requested"] == 2 and m["generation"]["n"] == 2


def test_missing_lm_eval_is_one_line_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from sqlshift.benchmarks import lmeval_bridge

    def absent(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", absent)
    with pytest.raises(ConfigError, match=r'pip install "lm-eval\[ifeval\]==0.4.13"'):
        lmeval_bridge.require_lm_eval()
