"""MMLU loading and log-likelihood scoring: parsing errors, padding invariance, letter tokens, resume, metrics."""

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
from sqlshift.metrics.mmlu import Scorer, build_metrics, check_letter_tokens, evaluate_mmlu, pad_batch

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


@pytest.fixture(scope="module")
def tiny(tiny_model_dir: Path) -> tuple[Any, Any]:
    from sqlshift.models import load_model

    return load_model(str(tiny_model_dir))


def make_q(subject: str, i: int, qlen: int = 1) -> MMLUQuestion:
    words = " ".join(["word"] * (1 + (i * 7) % 13) * qlen)
    return MMLUQuestion(subject, i, f"Question {i} about {words}?", (f"alpha {i}", "beta", f"gamma gamma {i}", "delta"),
                        "ABCD"[i % 4])


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


def test_check_letter_tokens_embedded_tokenizer(tiny: tuple[Any, Any]) -> None:
    _, tok = tiny
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


def test_letters_not_single_tokens_fall_back_to_cloze(tmp_path: Path) -> None:
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
    qs = [make_q("philosophy", i) for i in range(6)]
    m = evaluate_mmlu(model, tok, qs, tmp_path, mode="letter", batch_size=8, progress=False)
    assert m["mode"] == "cloze" and m["mode_requested"] == "letter" and m["n"] == 6
    assert any("fell back to cloze" in w for w in m["warnings"])


# ---------------------------------------------------------------- padding invariance


def scorer(tiny: tuple[Any, Any], mode: str, chat: bool = False) -> Scorer:
    model, tok = tiny
    return Scorer(model, tok, mode, chat, {}, 0, check_letter_tokens(tok) if mode == "letter" else None, None)


@pytest.mark.parametrize("mode,chat", [("letter", False), ("letter", True), ("cloze", False)])
def test_batched_scores_equal_single(tiny: tuple[Any, Any], mode: str, chat: bool) -> None:
    import torch

    sc = scorer(tiny, mode, chat)
    qs = [make_q("philosophy", i, qlen=1 + i % 3) for i in range(6)]
    assert len({len(sc.context(q)) for q in qs}) > 3  # lengths differ, so batching pads
    with torch.inference_mode():
        batched = sc.score(qs)
        single = [sc.score([q])[0] for q in qs]
        right = sc.score(qs, side="right")
    for b, s, r in zip(batched, single, right):
        assert b["scores"] == pytest.approx(s["scores"], abs=1e-4)
        assert b["scores"] == pytest.approx(r["scores"], abs=1e-4)


def test_pad_batch_positions_start_at_first_real_token() -> None:
    """RoPE is relative, so a Llama hides wrong positions; absolute-position models (GPT-2) would not."""
    ids, mask, pos = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert pos.tolist() == [[0, 1, 2], [0, 0, 0]]
    ids, mask, pos = pad_batch([[5, 6, 7], [8]], pad_id=0, side="right")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and pos.tolist() == [[0, 1, 2], [0, 0, 0]]


# ---------------------------------------------------------------- resume and metrics


def read_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def test_resume_after_interruption(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    qs = [make_q(s, i) for s in ("philosophy", "anatomy") for i in range(7)]
    first = evaluate_mmlu(model, tok, qs, tmp_path, batch_size=4, progress=False, limit=5)
    assert first["n"] == 5 and not first["complete"]
    with (tmp_path / "results.jsonl").open("a") as f:
        f.write('{"subject": "anatomy", "ind')  # killed mid-write
    second = evaluate_mmlu(model, tok, qs, tmp_path, batch_size=4, progress=False)
    rows = read_rows(tmp_path / "results.jsonl")
    assert second["complete"] and second["n"] == 14 and second["n_scored_this_run"] == 9
    assert len(rows) == 14 and len({(r["subject"], r["index"]) for r in rows}) == 14
    fresh = evaluate_mmlu(model, tok, qs, tmp_path / "fresh", batch_size=4, progress=False)
    assert fresh["n_correct"] == second["n_correct"]
    with pytest.raises(ConfigError, match="letter-mode"):
        evaluate_mmlu(model, tok, qs, tmp_path, mode="cloze", progress=False)


def test_metrics_format_and_category_aggregation(tiny: tuple[Any, Any], tmp_path: Path) -> None:
    model, tok = tiny
    subjects = ("philosophy", "anatomy", "sociology", "high_school_computer_science", "prehistory")
    qs = [make_q(s, i) for s in subjects for i in range(4)]
    m = evaluate_mmlu(model, tok, qs, tmp_path, mode="cloze", batch_size=8, progress=False, extra={"split": "test"})
    assert json.loads((tmp_path / "metrics.json").read_text()) == m
    for k in ("metric", "mode", "k_shot", "chat", "accuracy", "n", "n_correct", "ci95", "chance", "below_chance_p",
              "by_subject", "by_category", "subjects", "below_chance", "cloze_sum"):
        assert k in m, k
    assert m["metric"] == "mmlu" and m["chance"] == 0.25 and m["subjects"] == list(subjects)
    rows = read_rows(tmp_path / "results.jsonl")
    for r in rows:
        assert set(r) >= {"subject", "category", "index", "gold", "pred", "correct", "scores"}
        assert len(r["scores"]) == 4 and r["correct"] == (r["pred"] == r["gold"])
    hum = [r for r in rows if r["category"] == "humanities"]
    assert m["by_category"]["humanities"]["n"] == 8 == len(hum)
    assert m["by_category"]["humanities"]["n_correct"] == sum(r["correct"] for r in hum)
    assert sum(c["n"] for c in m["by_category"].values()) == m["n"] == 20
    assert m["by_subject"]["anatomy"]["n"] == 4 and len(m["by_subject"]["anatomy"]["ci95"]) == 2


def test_below_chance_guard() -> None:
    rows = [{"subject": "philosophy", "category": "humanities", "index": i, "gold": "A", "pred": "A" if i < 2 else "B",
             "correct": i < 2, "scores": [0, 0, 0, 0]} for i in range(60)]
    rows += [{"subject": "anatomy", "category": "other", "index": i, "gold": "A", "pred": "B", "correct": False,
              "scores": [0, 0, 0, 0]} for i in range(10)]  # n < 50: not flagged per subject
    m = build_metrics(rows, mode="letter", k_shot=0, chat=False)
    assert [b["subject"] for b in m["below_chance"]] == ["philosophy"]
    assert m["pred_counts"] == {"A": 2, "B": 68, "C": 0, "D": 0} and m["gold_counts"]["A"] == 70
    assert m["below_chance_p"] < 0.01


def test_chat_and_kshot_prompts(tiny: tuple[Any, Any], mmlu_dir: Path, tmp_path: Path) -> None:
    from sqlshift.metrics.mmlu import build_context

    _, tok = tiny
    q = load_mmlu(mmlu_dir, ["philosophy"])[10]
    shots, _ = load_fewshot(mmlu_dir, ["philosophy"], 2)
    plain = build_context(q, "letter", shots["philosophy"], False, tok)
    assert plain.startswith("The following are multiple choice questions (with answers) about philosophy.\n\n")
    assert plain.count("Answer:") == 3 and plain.endswith("\nD. four 10\nAnswer:")
    chat = build_context(q, "letter", [], True, tok)
    assert "<|im_start|>user" in chat and chat.endswith("<|im_start|>assistant\nAnswer:")
    model, _ = tiny
    m = evaluate_mmlu(model, tok, load_mmlu(mmlu_dir, ["philosophy"])[:6], tmp_path, k_shot=2, chat=True,
                      fewshot=shots, progress=False)
    assert m["k_shot"] == 2 and m["chat"] and m["n"] == 6


# ---------------------------------------------------------------- real model, real data


@pytest.mark.slow
def test_embedded_model_on_real_questions_is_deterministic(data_dir: Path, tmp_path: Path) -> None:
    from sqlshift.models import load_model

    model, tok = load_model("embedded")
    qs = seed_sample(load_mmlu(data_dir, ["philosophy", "high_school_computer_science"]), n=4, seed=42)
    a = evaluate_mmlu(model, tok, qs, tmp_path / "a", batch_size=4, progress=False)
    b = evaluate_mmlu(model, tok, qs, tmp_path / "b", batch_size=1, progress=False)
    ra, rb = read_rows(tmp_path / "a" / "results.jsonl"), read_rows(tmp_path / "b" / "results.jsonl")
    key = lambda r: (r["subject"], r["index"])  # noqa: E731
    for x, y in zip(sorted(ra, key=key), sorted(rb, key=key)):
        assert x["scores"] == pytest.approx(y["scores"], abs=1e-3)
    assert a["n"] == 8 and a["n_correct"] == b["n_correct"] and not a["warnings"]
    c = evaluate_mmlu(model, tok, qs[:3], tmp_path / "c", mode="cloze", batch_size=8, progress=False)
    assert c["mode"] == "cloze" and c["n"] == 3 and "cloze_sum" in c


def test_load_mmlu_hub_maps_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub option yields the same MMLUQuestion objects (load_dataset stubbed: no network in tests)."""
    import datasets

    from sqlshift.data.mmlu import load_mmlu_hub

    calls: list[tuple[str, str, str]] = []

    def fake(name: str, subject: str, split: str) -> list[dict[str, Any]]:
        calls.append((name, subject, split))
        return [{"question": "q?", "subject": subject, "choices": ["a", "b", "c", "d"], "answer": 2}]

    monkeypatch.setattr(datasets, "load_dataset", fake)
    qs = load_mmlu_hub("philosophy,anatomy", split="val")
    assert calls == [("cais/mmlu", "philosophy", "validation"), ("cais/mmlu", "anatomy", "validation")]
    assert qs[0] == MMLUQuestion("philosophy", 0, "q?", ("a", "b", "c", "d"), "C", "val")


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
