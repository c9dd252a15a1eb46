"""MMLU loading and the MMLU benchmark over an ``LM``: parsing errors, letter/cloze semantics against direct forward
passes, padding invariance, letter tokens, resume, metrics, the below-chance guard."""

from __future__ import annotations

import csv
import json
import string
from pathlib import Path
from typing import Any

import pytest

from sqlshift.data.mmlu import (CATEGORIES, SEED_SUBJECTS, SUBJECTS, MMLUQuestion, held_out_subjects, load_fewshot,
                                load_mmlu, load_seed_preset, mmlu_replay_examples, question_indices, read_mmlu_csv,
                                resolve_subjects, seed_sample)
from sqlshift.errors import ConfigError, DataError
from sqlshift.benchmarks.mmlu import MMLUBenchmark, MMLUSettings, question_id
from sqlshift.lm.hf import HFLM
from sqlshift.benchmarks.mmlu_prompts import build_context, build_metrics, check_letter_tokens
from sqlshift.stats import below_chance_p

SYNTH_SUBJECTS = ("philosophy", "high_school_computer_science", "anatomy", "sociology")


def write_csv(path: Path, rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def synth_rows(subject: str, n: int, split: str) -> list[list[str]]:
    """Rows with commas, quotes and a newline, the cases a naive split(',') gets wrong."""
    return [[f'{subject} q{i}: "which", of these\nis number {i}?', f"one, {i}", f"two {i}", f"three {i}",
             f"four {i}", "ABCD"[i % 4]] for i in range(n)]


@pytest.fixture(scope="module")
def mmlu_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MMLU folder in the authors' layout: 4 subjects, dev 5 / val 12 / test 60 rows each."""
    root = tmp_path_factory.mktemp("mmlu")
    for s in SYNTH_SUBJECTS:
        for split, n in (("dev", 5), ("val", 12), ("test", 60)):
            write_csv(root / split / f"{s}_{split}.csv", synth_rows(s, n, split))
    return root


# ---------------------------------------------------------------- CSV loading


def test_csv_parsing_handles_quotes_commas_newlines(mmlu_dir: Path) -> None:
    qs = load_mmlu(mmlu_dir, ["philosophy"], "test")
    assert len(qs) == 60
    q = qs[7]
    assert q.index == 7 and q.question == 'philosophy q7: "which", of these\nis number 7?'
    assert q.choices == ("one, 7", "two 7", "three 7", "four 7") and q.answer == "D"
    assert q.category == "humanities" and q.answer_text == "four 7"


def test_csv_wrong_column_count_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "test" / "philosophy_test.csv"
    write_csv(p, [['multi\nline "q"', "a", "b", "c", "d", "A"], ["q2", "a", "b", "c", "A"]])
    with pytest.raises(DataError) as e:
        read_mmlu_csv(p, "philosophy")
    assert f"{p}:3" in str(e.value) and "6 fields" in str(e.value)  # line 3: the first row spans lines 1-2


def test_csv_bad_answer_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "test" / "philosophy_test.csv"
    write_csv(p, [["q1", "a", "b", "c", "d", "B"], ["q2", "a", "b", "c", "d", "E"]])
    with pytest.raises(DataError) as e:
        load_mmlu(tmp_path, ["philosophy"])
    assert f"{p}:2" in str(e.value) and "'E'" in str(e.value)


def test_missing_file_and_unknown_subject(tmp_path: Path, mmlu_dir: Path) -> None:
    (tmp_path / "test").mkdir()
    with pytest.raises(DataError, match="does not exist"):
        load_mmlu(tmp_path, ["philosophy"])
    with pytest.raises(ConfigError, match="philosophy"):  # suggestion for a typo
        load_mmlu(mmlu_dir, ["philosopy"])


def test_subjects_and_categories() -> None:
    # the 57 MMLU subjects plus the 3 of the embedded demo quiz, which map onto the same categories
    assert len(SUBJECTS) == 57 and set(CATEGORIES) == set(SUBJECTS) | {"general_science", "world_geography",
                                                                        "everyday_math"}
    assert set(CATEGORIES.values()) == {"STEM", "humanities", "social sciences", "other"}
    assert CATEGORIES["high_school_computer_science"] == "STEM"
    assert CATEGORIES["philosophy"] == "humanities"
    assert CATEGORIES["high_school_macroeconomics"] == "social sciences"
    assert CATEGORIES["anatomy"] == "other" and CATEGORIES["professional_accounting"] == "other"
    assert resolve_subjects("seed") == list(SEED_SUBJECTS)
    assert resolve_subjects("all") == list(SUBJECTS)
    assert resolve_subjects(" philosophy, anatomy ") == ["philosophy", "anatomy"]
    assert len(resolve_subjects("stem")) == 18
    with pytest.raises(ConfigError):
        resolve_subjects("philosophy,nope")


def test_seed_sample_reproducible_and_independent_of_other_subjects(mmlu_dir: Path) -> None:
    qs = load_mmlu(mmlu_dir, list(SYNTH_SUBJECTS))
    a = question_indices(seed_sample(qs, n=20, seed=42))
    b = question_indices(seed_sample(list(reversed(qs)), n=20, seed=42))
    only = question_indices(seed_sample(load_mmlu(mmlu_dir, ["anatomy"]), n=20, seed=42))
    assert a == {s: sorted(v) for s, v in b.items()} and all(len(v) == 20 for v in a.values())
    assert only["anatomy"] == a["anatomy"]
    assert question_indices(seed_sample(qs, n=20, seed=1)) != a


def test_seed_preset_on_real_data(data_dir: Path) -> None:
    a, b = load_seed_preset(data_dir / "mmlu"), load_seed_preset(data_dir)
    ia, ib = question_indices(a), question_indices(b)
    assert ia == ib and list(ia) == list(SEED_SUBJECTS)
    assert all(len(v) == 50 and len(set(v)) == 50 for v in ia.values())


def test_fewshot_from_dev_else_zero_shot(mmlu_dir: Path, tmp_path: Path) -> None:
    shots, note = load_fewshot(mmlu_dir, ["philosophy"], 3)
    assert [q.index for q in shots["philosophy"]] == [0, 1, 2] and "dev" in note
    (tmp_path / "test").mkdir()
    shots, note = load_fewshot(tmp_path, ["philosophy"], 3)
    assert shots == {} and note.startswith("0-shot")


# ---------------------------------------------------------------- replay


def test_replay_examples_disjoint_from_eval_subjects(mmlu_dir: Path) -> None:
    eval_subjects = ["philosophy", "high_school_computer_science"]
    pool = [s for s in held_out_subjects(eval_subjects) if s in SYNTH_SUBJECTS]
    assert set(pool) == {"anatomy", "sociology"} and not set(held_out_subjects(eval_subjects)) & set(eval_subjects)
    ex = mmlu_replay_examples(mmlu_dir, pool, n=10, seed=0, exclude=eval_subjects)
    assert len(ex) == 10 and ex == mmlu_replay_examples(mmlu_dir, pool, n=10, seed=0, exclude=eval_subjects)
    for e in ex:
        assert set(e) == {"prompt", "completion"}
        assert e["prompt"].split(" ")[0] in ("anatomy", "sociology")
        assert "\nA. " in e["prompt"] and "\nD. " in e["prompt"]
        letter, text = e["completion"].split(". ", 1)
        assert letter in "ABCD" and f"\n{letter}. {text}" in e["prompt"]
    with pytest.raises(ConfigError, match="overlap"):
        mmlu_replay_examples(mmlu_dir, ["anatomy", "philosophy"], n=5, seed=0, exclude=eval_subjects)
    with pytest.raises(ConfigError):
        mmlu_replay_examples(mmlu_dir, pool, n=1000, seed=0)


# ---------------------------------------------------------------- letter tokens


def test_check_letter_tokens_embedded_tokenizer(lm: HFLM) -> None:
    tok = lm.tokenizer
    ids = check_letter_tokens(tok)
    assert len(set(ids)) == 4
    assert [tok.decode([i]) for i in ids] == [" A", " B", " C", " D"]
    assert ids[0] != tok("A", add_special_tokens=False)["input_ids"][0]  # " A", not "A"


def char_tokenizer() -> Any:
    """A character-level tokenizer: " A" is two tokens, so letter scoring is impossible."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<pad>": 1, "</s>": 2}
    for c in string.printable:
        vocab.setdefault(c, len(vocab))
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    tok.padding_side = "left"
    return tok


def test_letters_not_single_tokens_fall_back_to_cloze(mmlu_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sqlshift.errors import ScorerFailure

    tok = char_tokenizer()
    assert len(tok(" A", add_special_tokens=False)["input_ids"]) == 2
    with pytest.raises(ScorerFailure):
        check_letter_tokens(tok)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                         pad_token_id=1, eos_token_id=2, bos_token_id=2)).eval()
    m = bench(mmlu_dir, subjects=["philosophy"], sample=6, mode="letter", batch_size=8).evaluate(
        HFLM("char", loaded=(model, tok)), tmp_path)
    assert m["mode"] == "cloze" and m["mode_requested"] == "letter" and m["n"] == 6
    assert any("fell back to cloze" in w for w in m["warnings"])
    rows = read_rows(tmp_path / "results.jsonl")
    assert all(r["mode"] == "cloze" and len(r["scores_sum"]) == 4 for r in rows)


# ---------------------------------------------------------------- the benchmark over an LM


def bench(root: Path, **settings: Any) -> MMLUBenchmark:
    return MMLUBenchmark(MMLUSettings(benchmark="mmlu", **settings), root)


@pytest.fixture(scope="module")
def lm(tiny_model_dir: Path) -> HFLM:
    return HFLM(str(tiny_model_dir))


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def log_softmax_at(lm: HFLM, ids: list[int]) -> Any:
    """Log-probs at every position of one unpadded sequence (the reference for the benchmark's numbers)."""
    import torch

    with torch.inference_mode():
        return torch.log_softmax(lm.model(input_ids=torch.tensor([ids])).logits.float()[0], dim=-1)


def continuation_logprob(lm: HFLM, context: str, continuation: str) -> float:
    ctx, cont = lm.encode_context(context), lm.encode_continuation(continuation)
    lp = log_softmax_at(lm, ctx + cont)
    return float(sum(lp[len(ctx) - 1 + j, t] for j, t in enumerate(cont)))


def by_id(b: MMLUBenchmark) -> dict[str, MMLUQuestion]:
    return {question_id(q): q for q in b.questions()}


def test_letter_scores_are_next_token_logprobs_of_space_letters(lm: HFLM, mmlu_dir: Path, tmp_path: Path) -> None:
    b = bench(mmlu_dir, subjects=["philosophy", "anatomy"], sample=6, mode="letter")
    m = b.evaluate(lm, tmp_path)
    rows, qs = read_rows(tmp_path / "results.jsonl"), by_id(b)
    letter_ids = check_letter_tokens(lm.tokenizer)
    assert m["mode"] == "letter" and len(rows) == m["n"] == 6 and set(qs) == {r["id"] for r in rows}
    for r in rows:
        q = qs[r["id"]]
        lp = log_softmax_at(lm, lm.encode_context(build_context(q, "letter", [], False, lm.tokenizer)))[-1]
        want = [float(lp[i]) for i in letter_ids]
        assert r["scores"] == pytest.approx(want, abs=1e-4)
        assert r["pred"] == "ABCD"[max(range(4), key=lambda i: want[i])]
        assert r["gold"] == q.answer and r["correct"] == (r["pred"] == q.answer)
    assert m["n_correct"] == sum(r["correct"] for r in rows)


def test_cloze_scores_are_per_character_normalised_answer_logprobs(lm: HFLM, mmlu_dir: Path, tmp_path: Path) -> None:
    b = bench(mmlu_dir, subjects=["sociology"], sample=5, mode="cloze")
    m = b.evaluate(lm, tmp_path)
    rows, qs = read_rows(tmp_path / "results.jsonl"), by_id(b)
    assert m["mode"] == "cloze" and len(rows) == 5
    for r in rows:
        q = qs[r["id"]]
        ctx = build_context(q, "cloze", [], False, lm.tokenizer)
        assert ctx.endswith(f"Question: {q.question.strip()}\nAnswer:") and "A. " not in ctx  # choices not shown
        sums = [continuation_logprob(lm, ctx, " " + c.strip()) for c in q.choices]
        norm = [s / len(c.strip()) for s, c in zip(sums, q.choices)]
        assert r["scores_sum"] == pytest.approx(sums, abs=1e-4)
        assert r["scores"] == pytest.approx(norm, abs=1e-4)
        assert r["pred"] == "ABCD"[max(range(4), key=lambda i: norm[i])]
        assert r["pred_sum"] == "ABCD"[max(range(4), key=lambda i: sums[i])]
    assert m["cloze_sum"]["n_correct"] == sum(r["pred_sum"] == r["gold"] for r in rows)


@pytest.mark.parametrize("mode,chat", [("letter", False), ("letter", True), ("cloze", False)])
def test_batched_scores_equal_single(lm: HFLM, mmlu_dir: Path, tmp_path: Path, mode: str, chat: bool) -> None:
    settings = dict(subjects=["philosophy", "high_school_computer_science"], sample=6, mode=mode, chat=chat)
    bench(mmlu_dir, batch_size=16, **settings).evaluate(lm, tmp_path / "batched")
    bench(mmlu_dir, batch_size=1, **settings).evaluate(lm, tmp_path / "single")
    batched = {r["id"]: r for r in read_rows(tmp_path / "batched" / "results.jsonl")}
    single = {r["id"]: r for r in read_rows(tmp_path / "single" / "results.jsonl")}
    assert set(batched) == set(single) and len(batched) == 6
    for k, r in batched.items():
        assert r["scores"] == pytest.approx(single[k]["scores"], abs=1e-4)


def test_resume_after_interruption(lm: HFLM, mmlu_dir: Path, tmp_path: Path) -> None:
    from test_lm_hf import CountingLM

    b = bench(mmlu_dir, subjects=["philosophy", "anatomy"], sample=14, batch_size=4)
    full = b.evaluate(lm, tmp_path / "full")
    lines = (tmp_path / "full" / "results.jsonl").read_text().splitlines(keepends=True)
    part = tmp_path / "part"
    part.mkdir()
    (part / "results.jsonl").write_text("".join(lines[:5]) + '{"id": "anatomy:3", "subj')  # killed mid-write
    counting = CountingLM(lm)
    second = b.evaluate(counting, part)
    assert counting.loglikelihood_requests == 4 * 9, "only the 9 missing questions are scored (4 requests each)"
    rows = read_rows(part / "results.jsonl")
    assert second["complete"] and second["n"] == 14 and second["n_requested"] == 14
    assert len(rows) == 14 and len({r["id"] for r in rows}) == 14
    assert second["n_correct"] == full["n_correct"]
    fresh = {r["id"]: r["scores"] for r in read_rows(tmp_path / "full" / "results.jsonl")}
    assert all(r["scores"] == pytest.approx(fresh[r["id"]], abs=1e-4) for r in rows)
    again = CountingLM(lm)
    assert b.evaluate(again, part)["n"] == 14 and again.loglikelihood_requests == 0
    with pytest.raises(ConfigError, match="letter-mode"):
        bench(mmlu_dir, subjects=["philosophy", "anatomy"], sample=14, mode="cloze").evaluate(lm, part)


def test_metrics_format_and_category_aggregation(lm: HFLM, mmlu_dir: Path, tmp_path: Path) -> None:
    b = bench(mmlu_dir, subjects=list(SYNTH_SUBJECTS), sample=24, mode="cloze", batch_size=16)
    m = b.evaluate(lm, tmp_path)
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    for k in ("metric", "mode", "k_shot", "chat", "accuracy", "n", "n_correct", "ci95", "chance", "below_chance_p",
              "by_subject", "by_category", "subjects", "below_chance", "cloze_sum", "benchmark", "axis", "kind",
              "label", "n_requested", "complete", "pred_counts", "gold_counts", "prior_corrected_accuracy"):
        assert k in m, k
    assert (m["benchmark"], m["axis"], m["kind"], m["label"]) == ("mmlu", "generality", "multiple_choice", "MMLU")
    assert m["metric"] == "mmlu" and m["chance"] == 0.25 and m["complete"]
    assert m["n"] == 24 and 0 <= m["n_correct"] <= 24 and m["accuracy"] == m["n_correct"] / 24
    lo, hi = m["ci95"]
    assert 0 <= lo <= m["accuracy"] <= hi <= 1
    rows = read_rows(tmp_path / "results.jsonl")
    assert sorted(m["subjects"]) == sorted({r["subject"] for r in rows})
    for r in rows:
        assert set(r) >= {"id", "subject", "category", "index", "gold", "pred", "correct", "scores", "mode"}
        assert r["id"] == f"{r['subject']}:{r['index']}"
        assert len(r["scores"]) == 4 and r["correct"] == (r["pred"] == r["gold"])
    assert m["questions"] == {s: sorted(r["index"] for r in rows if r["subject"] == s) for s in m["subjects"]}
    for cat in {r["category"] for r in rows}:
        members = [r for r in rows if r["category"] == cat]
        assert m["by_category"][cat]["n"] == len(members)
        assert m["by_category"][cat]["n_correct"] == sum(r["correct"] for r in members)
    assert set(m["by_category"]) <= {"STEM", "humanities", "social sciences", "other"}
    assert sum(c["n"] for c in m["by_category"].values()) == m["n"]
    for s, sm in m["by_subject"].items():
        assert sm["n"] == sum(r["subject"] == s for r in rows) and len(sm["ci95"]) == 2


def test_check_reports_missing_folders_and_unknown_subjects(tmp_path: Path, mmlu_dir: Path) -> None:
    assert bench(mmlu_dir, subjects=["philosophy"]).check() == []
    (problem,) = bench(tmp_path / "nowhere").check()
    assert "does not exist" in problem
    (problem,) = bench(mmlu_dir, subjects=["philosopy"]).check()
    assert "philosop" in problem
    assert bench(mmlu_dir, subjects="all", exclude=["anatomy"]).subjects() == [
        s for s in bench(mmlu_dir, subjects="all").subjects() if s != "anatomy"]


def test_check_reports_a_listed_subject_whose_csv_is_missing(mmlu_dir: Path) -> None:
    """A real MMLU subject whose CSV is not in the folder must be found up front, not after the model has loaded."""
    problems = bench(mmlu_dir, subjects=["prehistory"]).check()
    assert problems and "prehistory" in " ".join(problems)
    problems = bench(mmlu_dir).check()  # the default "seed" protocol on a folder without all seed subjects
    assert problems and "high_school_macroeconomics" in " ".join(problems)


def test_settings_are_strict() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="sampel"):
        MMLUSettings(benchmark="mmlu", sampel=3)
    with pytest.raises(ValidationError):
        MMLUSettings(benchmark="mmlu", mode="generate")


def shifted_key_rows(subject: str, n: int, n_correct: int) -> list[dict[str, Any]]:
    """A model that knows the answers read against a key shifted by one letter: right only on the first
    ``n_correct`` items, and its letters follow the key's (near-uniform) shares."""
    rows = []
    for i in range(n):
        gold = "ABCD"[i % 4]
        pred = gold if i < n_correct else "ABCD"[(i + 1) % 4]
        rows.append({"subject": subject, "category": "humanities", "index": i, "gold": gold, "pred": pred,
                     "correct": pred == gold, "scores": [0, 0, 0, 0]})
    return rows


def test_below_chance_guard() -> None:
    rows = shifted_key_rows("philosophy", 60, 2) + shifted_key_rows("anatomy", 10, 0)  # n < 50: not per subject
    m = build_metrics(rows, mode="letter", k_shot=0, chat=False)
    assert [b["subject"] for b in m["below_chance"]] == ["philosophy"]
    assert m["by_subject"]["philosophy"]["habit_chance"] == pytest.approx(0.25, abs=0.01)
    assert sum(m["pred_counts"].values()) == 70 and m["gold_counts"]["A"] == 18
    assert m["below_chance_p"] < 0.01


def test_a_letter_habit_is_not_a_scorer_failure() -> None:
    """Session 18's 0.5B model answered "B" to 89% of MMLU and scored 15% on a subject whose key is 15% "B":
    below 25% (p < 0.01) but exactly its habit; the guard must not call that a broken scorer."""
    golds = ["B"] * 33 + ["A", "C", "D"] * 61  # n = 216, 15% "B"
    rows = [{"subject": "high_school_statistics", "category": "STEM", "index": i, "gold": g,
             "pred": "B" if i % 10 else "C", "scores": [0, 0, 0, 0]} for i, g in enumerate(golds)]
    for r in rows:
        r["correct"] = r["pred"] == r["gold"]
    m = build_metrics(rows, mode="letter", k_shot=0, chat=False)
    subject = m["by_subject"]["high_school_statistics"]
    assert subject["accuracy"] < 0.2 and below_chance_p(subject["n_correct"], 216, 0.25) < 0.01  # the old alarm
    assert subject["habit_chance"] < 0.25 and m["below_chance"] == [] and m["below_chance_p"] > 0.01


def test_below_chance_is_a_problem_of_the_benchmark(mmlu_dir: Path) -> None:
    """MMLUBenchmark.problems turns the below-chance test into a BelowChance (a ScorerFailure) for the runner."""
    from sqlshift.errors import BelowChance, ScorerFailure

    def metrics(n_correct: int, n: int = 80) -> dict[str, Any]:
        return build_metrics(shifted_key_rows("philosophy", n, n_correct), mode="letter", k_shot=0, chat=False)

    b = bench(mmlu_dir)
    (p,) = b.problems(metrics(2))
    assert isinstance(p, BelowChance) and isinstance(p, ScorerFailure)
    assert "below chance" in str(p) and "mmlu" in str(p) and "allow-below-chance" in str(p)
    assert "philosophy 2.5% of n=80, habit chance 25.0%" in str(p)
    assert b.problems(metrics(20)) == []  # 25%: chance, fine
    assert b.problems(metrics(0, n=10)) == []  # too few to tell


def test_chat_and_kshot_prompts(lm: HFLM, mmlu_dir: Path, tmp_path: Path) -> None:
    tok = lm.tokenizer
    q = load_mmlu(mmlu_dir, ["philosophy"])[10]
    shots, _ = load_fewshot(mmlu_dir, ["philosophy"], 2)
    plain = build_context(q, "letter", shots["philosophy"], False, tok)
    assert plain.startswith("The following are multiple choice questions (with answers) about philosophy.\n\n")
    assert plain.count("Answer:") == 3 and plain.endswith("\nD. four 10\nAnswer:")
    chat = build_context(q, "letter", [], True, tok)
    assert "<|im_start|>user" in chat and chat.endswith("<|im_start|>assistant\nAnswer:")
    b = bench(mmlu_dir, subjects=["philosophy"], sample=6, k_shot=2, chat=True)
    m = b.evaluate(lm, tmp_path)
    assert m["k_shot"] == 2 and m["chat"] and m["n"] == 6 and "dev" in m["fewshot_note"]
    letter_ids = check_letter_tokens(tok)
    r = read_rows(tmp_path / "results.jsonl")[0]
    ctx = build_context(by_id(b)[r["id"]], "letter", shots["philosophy"], True, tok)  # the 2-shot chat prompt
    lp = log_softmax_at(lm, lm.encode_context(ctx))[-1]
    assert r["scores"] == pytest.approx([float(lp[i]) for i in letter_ids], abs=1e-4)


# ---------------------------------------------------------------- real model, real data


def test_seed_protocol_on_real_data_is_150_questions(data_dir: Path) -> None:
    b = bench(data_dir)
    assert b.check() == []
    qs = b.questions()
    assert len(qs) == 150 and len({question_id(q) for q in qs}) == 150
    assert list(question_indices(qs)) == list(SEED_SUBJECTS)


@pytest.mark.slow
def test_embedded_model_on_real_questions_is_deterministic(data_dir: Path, tmp_path: Path) -> None:
    lm = HFLM("embedded")
    settings = dict(subjects=["philosophy", "high_school_computer_science"], sample=8)
    a = bench(data_dir, batch_size=4, **settings).evaluate(lm, tmp_path / "a")
    b = bench(data_dir, batch_size=1, **settings).evaluate(lm, tmp_path / "b")
    ra = {r["id"]: r for r in read_rows(tmp_path / "a" / "results.jsonl")}
    rb = {r["id"]: r for r in read_rows(tmp_path / "b" / "results.jsonl")}
    assert set(ra) == set(rb)
    for k in ra:
        assert ra[k]["scores"] == pytest.approx(rb[k]["scores"], abs=1e-3)
    assert a["n"] == 8 and a["n_correct"] == b["n_correct"] and not a["warnings"]
    c = bench(data_dir, subjects=["philosophy"], sample=3, mode="cloze", batch_size=8).evaluate(lm, tmp_path / "c")
    assert c["mode"] == "cloze" and c["n"] == 3 and "cloze_sum" in c



def test_prior_corrected_accuracy_removes_a_letter_habit() -> None:
    """A model that knows every answer but adds a large constant bonus to "B" is 25% raw and 100% once corrected."""
    rows = []
    for i, gold in enumerate("ABCD" * 5):
        scores = [-3.0, -3.0, -3.0, -3.0]
        scores["ABCD".index(gold)] = -1.0
        scores[1] += 2.5  # the habit: "B" always wins the raw argmax
        pred = "ABCD"[max(range(4), key=lambda k: scores[k])]
        rows.append({"subject": "s", "category": "other", "index": i, "gold": gold, "pred": pred,
                     "correct": pred == gold, "scores": scores, "mode": "letter"})
    m = build_metrics(rows, mode="letter", k_shot=0, chat=False)
    assert m["accuracy"] == 0.25
    assert m["pred_counts"]["B"] == 20
    assert m["prior_corrected_accuracy"] == 1.0
