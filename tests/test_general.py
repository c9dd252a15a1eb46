"""The log-likelihood multiple-choice generality tasks: scoring, headline metrics, guards, resume, data files,
and agreement with lm-evaluation-harness on the same items (skipped when lm-eval is not installed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from general_lm import ScriptedLM
from sqlshift.benchmarks.api import get_benchmark
from sqlshift.data.general import FILES, read_general
from sqlshift.errors import BelowChance, DataError

MC = ("hellaswag", "arc_challenge", "arc_easy", "winogrande", "boolq", "piqa", "truthfulqa_mc1")


def _row(name: str, i: int, gold: int) -> dict[str, Any]:
    """Item ``i`` of a constructed file: option ``gold`` carries the word GOLD, the others WRONG."""
    opts = [("GOLD" if j == gold else "WRONG") + f" option {j} of item {i}" for j in range(4)]
    if name == "hellaswag":
        return {"ctx_a": f"A person opens box {i}.", "ctx_b": "they", "ctx": "", "endings": opts,
                "label": str(gold), "activity_label": "Boxes [title] unpacking"}
    if name in ("arc_challenge", "arc_easy"):
        return {"id": f"Q{i}", "question": f"Which option is right for question {i}?", "choices": opts, "gold": gold}
    if name == "winogrande":
        g = gold % 2
        names = [("GOLD" if j == g else "WRONG") + f"Person{i}" for j in range(2)]
        return {"sentence": f"Anna met Beth at party {i} so _ brought a cake.", "option1": names[0],
                "option2": names[1], "answer": str(g + 1)}
    if name == "boolq":
        return {"question": f"is statement {i} true", "passage": f"Passage number {i}.", "answer": bool(gold % 2)}
    if name == "piqa":
        g = gold % 2
        sols = [("GOLD" if j == g else "WRONG") + f" way {j} for task {i}" for j in range(2)]
        return {"goal": f"How to do task {i}?", "sol1": sols[0], "sol2": sols[1], "label": g}
    if name == "truthfulqa_mc1":
        order = [gold] + [j for j in range(4) if j != gold]
        return {"question": f"What is fact {i}?", "mc1_targets": {opts[j]: int(j == gold) for j in order},
                "mc2_targets": {}}
    raise KeyError(name)


def write_fixture(root: Path, name: str, n: int, golds: list[int] | None = None) -> Path:
    """A constructed file for ``name`` under ``root/general`` with the standard file name."""
    rows = [_row(name, i, (golds or [i % 4 for i in range(n)])[i]) for i in range(n)]
    path = root / "general" / FILES[name]
    path.parent.mkdir(parents=True, exist_ok=True)
    if name == "truthfulqa_mc1":
        path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def bench(name: str, root: Path, **settings: Any) -> Any:
    cls = get_benchmark(name)
    return cls(cls.Settings(benchmark=name, **settings), root)


def marker_score(word: str):
    """Log-likelihood that prefers whatever option carries ``word`` (boolq: 'yes' stands for GOLD on odd items)."""
    def score(ctx: str, cont: str) -> float:
        if cont.strip() in ("yes", "no"):
            return 0.0 if cont.strip() == "yes" else -1.0
        return 0.0 if word in ctx + cont else -5.0
    return score


@pytest.mark.parametrize("name", MC)
def test_gold_preferring_model_scores_everything(tmp_path: Path, name: str) -> None:
    write_fixture(tmp_path, name, 8)
    b = bench(name, tmp_path)
    assert b.name == name and b.axis == "generality" and b.kind == "multiple_choice" and b.label
    score = marker_score("GOLD")
    m = b.evaluate(ScriptedLM(score), tmp_path / "out")
    rows = [json.loads(x) for x in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in rows if r["id"]] and len({r["id"] for r in rows}) == 8
    if name == "boolq":  # 'yes' always wins: right on the odd items only
        assert m["n_correct"] == 4
        return
    assert m["accuracy"] == 1.0 and m["n"] == 8 and m["ci95"]
    assert m["headline"] == b.headline and m["chance"] == pytest.approx(1 / rows[0]["n_choices"])
    wrong = b.evaluate(ScriptedLM(marker_score("WRONG")), tmp_path / "out2")
    assert wrong["accuracy"] == 0.0
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["accuracy"] == 1.0


def test_headlines_follow_the_field() -> None:
    assert {n: get_benchmark(n).headline for n in MC} == {
        "hellaswag": "acc_norm", "arc_challenge": "acc_norm", "arc_easy": "acc_norm", "piqa": "acc_norm",
        "winogrande": "acc", "boolq": "acc", "truthfulqa_mc1": "acc"}


def test_acc_norm_divides_by_option_length(tmp_path: Path) -> None:
    """A long gold ending with the better per-character log-prob wins acc_norm but loses raw acc."""
    path = tmp_path / "general" / FILES["hellaswag"]
    path.parent.mkdir(parents=True)
    row = {"ctx_a": "A man sits.", "ctx_b": "he", "ctx": "", "activity_label": "Sitting", "label": "0",
           "endings": ["stands up slowly and walks to the door.", "sits.", "runs.", "eats."]}
    path.write_text(json.dumps(row) + "\n")
    m = bench("hellaswag", tmp_path).evaluate(ScriptedLM(lambda c, x: -0.5 * len(x) if len(x) > 10 else -8.0),
                                              tmp_path / "out")
    r = json.loads((tmp_path / "out" / "results.jsonl").read_text())
    assert r["correct"] is True and r["correct_raw"] is False and r["pred_raw"] != 0
    assert m["accuracy"] == 1.0 and m["accuracy_raw"] == 0.0 and m["headline"] == "acc_norm"


def test_prompts_match_lm_eval_templates(tmp_path: Path) -> None:
    """Spot checks of the rendered requests (lm-eval 0.4.13 YAMLs); the agreement test checks them all."""
    for name in ("hellaswag", "winogrande", "boolq"):
        write_fixture(tmp_path, name, 2)
    hs = bench("hellaswag", tmp_path).items()[0].requests()[0]
    assert hs.context == "Boxes. unpacking: A person opens box 0. They"
    assert hs.continuation == " GOLD option 0 of item 0"
    wg = bench("winogrande", tmp_path).items()[0].requests()
    assert [r.context for r in wg] == ["Anna met Beth at party 0 so GOLDPerson0", "Anna met Beth at party 0 so WRONGPerson0"]
    assert {r.continuation for r in wg} == {" brought a cake."}
    bq = bench("boolq", tmp_path).items()[1]
    assert bq.requests()[0].context == "Passage number 1.\nQuestion: is statement 1 true?\nAnswer:"
    assert [r.continuation for r in bq.requests()] == [" no", " yes"] and bq.gold == 1


def test_wrong_answer_key_is_caught_below_chance(tmp_path: Path) -> None:
    """The model knows the answers, the key is shifted by one: 0% of 60 is a scorer failure, not forgetting."""
    write_fixture(tmp_path, "arc_easy", 60)
    path = tmp_path / "general" / FILES["arc_easy"]
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({**r, "gold": (r["gold"] + 1) % 4}) + "\n" for r in rows))
    b = bench("arc_easy", tmp_path)
    m = b.evaluate(ScriptedLM(marker_score("GOLD")), tmp_path / "out")
    assert m["accuracy"] == 0.0 and m["below_chance_p"] < 1e-6
    problems = b.problems(m)
    assert len(problems) == 1 and isinstance(problems[0], BelowChance) and "ARC-Easy" in str(problems[0])


def test_a_position_habit_on_a_skewed_key_is_not_a_scorer_failure(tmp_path: Path) -> None:
    """A model that always picks the first option, on a key where the first option is right 3 times in 60, scores 5%:
    far below 25% but exactly its habit (habit chance 5%); the guard must not call that a broken scorer."""
    write_fixture(tmp_path, "arc_easy", 60, golds=[0, 0, 0] + [1, 2, 3] * 19)
    b = bench("arc_easy", tmp_path)
    m = b.evaluate(ScriptedLM(lambda c, x: 0.0), tmp_path / "out")  # ties: always option 0
    assert m["accuracy"] == pytest.approx(0.05) and m["habit_chance"] == pytest.approx(0.05)
    assert m["below_chance_p"] > 0.5 and b.problems(m) == []


def test_one_answer_habit_is_recorded(tmp_path: Path) -> None:
    write_fixture(tmp_path, "piqa", 20)
    m = bench("piqa", tmp_path).evaluate(ScriptedLM(lambda c, x: 0.0), tmp_path / "out")  # ties: always option 0
    assert m["one_answer"] is True and m["top_position"] == "0" and m["top_position_share"] == 1.0


class Interrupted(RuntimeError):
    pass


def test_interrupted_run_resumes(tmp_path: Path) -> None:
    write_fixture(tmp_path, "arc_challenge", 10)
    b = bench("arc_challenge", tmp_path, chunk=4)
    calls: list[int] = []

    def flaky(ctx: str, cont: str) -> float:
        if len(calls) >= 4 * 4 + 1:  # the second chunk's first request
            raise Interrupted
        calls.append(1)
        return marker_score("GOLD")(ctx, cont)

    with pytest.raises(Interrupted):
        b.evaluate(ScriptedLM(flaky), tmp_path / "out")
    assert len((tmp_path / "out" / "results.jsonl").read_text().splitlines()) == 4
    lm = ScriptedLM(marker_score("GOLD"))
    m = b.evaluate(lm, tmp_path / "out")
    assert len(lm.requests) == 6 * 4  # only the six items without a row
    assert m["n"] == 10 and m["accuracy"] == 1.0 and m["complete"] is True


def test_sample_is_a_seeded_subset(tmp_path: Path) -> None:
    write_fixture(tmp_path, "arc_easy", 30)
    runs = [bench("arc_easy", tmp_path, sample=7, sample_seed=1).evaluate(ScriptedLM(marker_score("GOLD")), tmp_path / d)
            for d in ("a", "b")]
    ids = [[json.loads(x)["id"] for x in (tmp_path / d / "results.jsonl").read_text().splitlines()] for d in "ab"]
    assert runs[0]["n"] == 7 and runs[0]["n_requested"] == 7 and ids[0] == ids[1] and ids[0] != [f"Q{i}" for i in range(7)]


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    b = bench("boolq", tmp_path)
    (msg,) = b.check()
    assert "boolq_val.jsonl" in msg and "sqlshift fetch-general" in msg
    bad = tmp_path / "general" / FILES["arc_easy"]
    bad.parent.mkdir(parents=True)
    bad.write_text('{"id": "a", "question": "q", "choices": ["x"]}\n')
    with pytest.raises(DataError, match="lacks field.*gold.*fetch-general"):
        read_general("arc_easy", bad)
    bad.write_text('{"id": "a", "question": "q", "choices": ["x"], "gold": 3}\nnot json\n')
    with pytest.raises(DataError, match="arc_easy_test.jsonl"):
        read_general("arc_easy", bad)
    other = tmp_path / "elsewhere.jsonl"
    write_fixture(tmp_path / "x", "boolq", 3).rename(other)
    assert bench("boolq", tmp_path, file=str(other)).check() == []


def test_settings_are_strict() -> None:
    cls = get_benchmark("hellaswag")
    with pytest.raises(Exception, match="batch_sise"):
        cls.Settings(benchmark="hellaswag", batch_sise=3)


# ---------------------------------------------------------------- agreement with lm-evaluation-harness


@pytest.fixture(scope="module")
def tiny_lm(tiny_model_dir: Path) -> Any:
    """sqlshift's own HF backend over the tiny random Llama: the production LM path on both sides."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sqlshift.lm.hf import HFLM
    from sqlshift.lm.models import prepare_tokenizer

    tok = prepare_tokenizer(AutoTokenizer.from_pretrained(tiny_model_dir))
    return HFLM("tiny", dtype="fp32", loaded=(AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), tok))


def agreement(benches: list[Any], lm: Any, n: int) -> dict[str, tuple[int, list[str]]]:
    """Per task: items (of the first ``n``) where sqlshift and lm-eval (through the adapter, on the same file)
    give the same log-likelihoods and the same acc / acc_norm verdicts; and the differing items."""
    from sqlshift.benchmarks import lmeval_bridge as bridge

    out = bridge.run_lmeval(bridge.adapter(lm), [bridge.task_config(b.name, b.path) for b in benches], limit=n)
    report = {}
    for b in benches:
        items = b.items()[:n]
        reqs = [r for it in items for r in it.requests()]
        lls, k, ours = lm.loglikelihood(reqs), 0, []
        for it in items:
            ours.append(b.score(it, lls[k:k + it.n_choices]))
            k += it.n_choices
        theirs = sorted(out["samples"][b.name], key=lambda s: s["doc_id"])
        same, diffs = 0, []
        for it, mine, s in zip(items, ours, theirs):
            their_lls = [float(x[0]) for x in s["filtered_resps"]]
            raw = mine["correct"] if b.headline == "acc" else mine["correct_raw"]
            ok = (len(their_lls) == len(mine["loglikelihoods"])
                  and all(abs(a - c) < 1e-3 for a, c in zip(their_lls, mine["loglikelihoods"]))
                  and bool(s["acc"]) == bool(raw)
                  and ("acc_norm" not in s or bool(s["acc_norm"]) == bool(mine["correct"])))
            same += ok
            if not ok:
                diffs.append(f"{mine['id']}: lm-eval {s['arguments']} vs ours {it.requests()}")
        report[b.name] = (same, diffs)
    return report


def test_agrees_with_lm_eval_on_constructed_items(tmp_path: Path, tiny_lm: Any) -> None:
    pytest.importorskip("lm_eval")
    for name in MC:
        write_fixture(tmp_path, name, 5)
    report = agreement([bench(name, tmp_path) for name in MC], tiny_lm, 5)
    assert {name: same for name, (same, _) in report.items()} == dict.fromkeys(MC, 5), report


@pytest.mark.data
@pytest.mark.slow
def test_agrees_with_lm_eval_on_real_items(data_dir: Path, tiny_lm: Any) -> None:
    pytest.importorskip("lm_eval")
    report = agreement([bench(name, data_dir) for name in MC], tiny_lm, 20)
    print({name: f"{same}/20" for name, (same, _) in report.items()})
    assert {name: same for name, (same, _) in report.items()} == dict.fromkeys(MC, 20), report
