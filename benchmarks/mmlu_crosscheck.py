"""Score the same MMLU questions with sqlshift's MMLU benchmark and with lm-eval's ``mmlu`` task, on one model.

Three scorers of the same questions (letter mode: the log-prob of `` A``..`` D`` after ``Answer:``):

* ``sqlshift``: :class:`sqlshift.benchmarks.mmlu.MMLUBenchmark` over sqlshift's HF backend;
* ``lmeval-adapter``: lm-eval's ``mmlu_<subject>`` tasks (its own YAML, local CSV data) through the adapter over the
  same backend -- a difference here is a *prompt* difference;
* ``lmeval-hf``: the same tasks through lm-eval's own ``HFLM`` on the same model object -- a difference that the
  adapter run does not show is a *tokenisation* (or batching) difference.

Prints per-question agreement and, for every disagreement, its cause (prompt text, token ids, or numerics), and
writes ``crosscheck.json``. CPU example (embedded model, 300 questions)::

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/mmlu_crosscheck.py --data-dir /work/shared/data --n 300
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

LETTERS = ("A", "B", "C", "D")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="embedded", help="Hub id, folder, .gguf or 'embedded'")
    p.add_argument("--data-dir", type=Path, required=True, help="folder holding mmlu/{dev,test}/")
    p.add_argument("--n", type=int, default=300, help="questions, a seeded sample over all subjects (0: all 14042)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--k-shot", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--out", type=Path, default=Path("mmlu-crosscheck"))
    p.add_argument("--skip-hf", action="store_true", help="leave out lm-eval's own HFLM run")
    return p.parse_args()


def write_lmeval_data(questions: list[Any], mmlu_dir: Path, subjects: list[str], out: Path) -> dict[str, dict]:
    """Per subject, the test and dev CSVs as JSON lines in cais/mmlu's layout (question, subject, choices, answer)."""
    from sqlshift.data.mmlu import load_mmlu

    files: dict[str, dict[str, str]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for s in subjects:
        files[s] = {}
        for split in ("test", "dev"):
            path = out / f"{s}_{split}.jsonl"
            with path.open("w", encoding="utf-8") as fh:
                for q in load_mmlu(mmlu_dir, [s], split=split):
                    fh.write(json.dumps({"question": q.question, "subject": s, "choices": list(q.choices),
                                         "answer": q.answer_index}) + "\n")
            files[s][split] = str(path)
    return files


def lmeval_configs(files: dict[str, dict[str, str]], k_shot: int) -> list[dict[str, Any]]:
    """lm-eval's own ``mmlu_<subject>`` YAML (default template) with its data pointed at the local files."""
    import lm_eval.tasks
    from lm_eval.tasks._yaml_loader import load_yaml

    root = Path(lm_eval.tasks.__file__).parent / "mmlu" / "default"
    configs = []
    for s, paths in files.items():
        cfg = load_yaml(root / f"mmlu_{s}.yaml", resolve_func=True)
        cfg.pop("tag", None)
        cfg.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": paths},
                   test_split="test", fewshot_split="dev", num_fewshot=k_shot)
        configs.append(cfg)
    return configs


def lmeval_predictions(model: Any, configs: list[dict[str, Any]], questions: list[Any]) -> dict[str, dict]:
    """``{question id: {pred, logprobs, context}}`` from lm-eval's evaluator on exactly these questions."""
    from sqlshift.benchmarks.mmlu import question_id
    from sqlshift.benchmarks.lmeval_bridge import run_lmeval

    wanted: dict[str, list[int]] = {}
    for q in questions:
        wanted.setdefault(f"mmlu_{q.subject}", []).append(q.index)
    out = run_lmeval(model, configs, samples=wanted)
    preds = {}
    for task, samples in out["samples"].items():
        subject = task.removeprefix("mmlu_")
        for s in samples:
            lls = [float(x[0]) for x in s["filtered_resps"]]
            args = s["arguments"]
            first = args[0] if isinstance(args, list) else next(iter(args.values()))
            ctx = first[0] if isinstance(first, (list, tuple)) else next(iter(first.values()))
            preds[question_id(_Q(subject, int(s["doc_id"])))] = {
                "pred": LETTERS[max(range(4), key=lambda i: (lls[i], -i))], "logprobs": lls, "context": ctx}
    return preds


class Memo:
    """An ``LM`` that answers a request it has already scored from memory: the adapter pass re-scores only the
    questions whose lm-eval prompt differs from sqlshift's (identical requests to a deterministic model give
    identical answers), so the prompt check costs no second pass over the model."""

    def __init__(self, lm: Any) -> None:
        self.lm, self.memory = lm, {}
        self.tokenizer, self.hits = lm.tokenizer, 0

    def loglikelihood(self, requests: list[Any], **kw: Any) -> list[tuple[float, bool]]:
        todo = [r for r in dict.fromkeys(requests) if r not in self.memory]
        self.memory.update(zip(todo, self.lm.loglikelihood(todo, **kw) if todo else []))
        self.hits += len(requests) - len(todo)
        return [self.memory[r] for r in requests]

    def __getattr__(self, name: str) -> Any:  # generate, stats, identity...: the wrapped LM's
        return getattr(self.lm, name)


class _Q:
    """Just enough of an MMLUQuestion for :func:`question_id`."""

    def __init__(self, subject: str, index: int) -> None:
        self.subject, self.index = subject, index


def first_difference(a: str, b: str) -> str:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"at char {i}: sqlshift {a[max(0, i - 20):i + 30]!r} vs lm-eval {b[max(0, i - 20):i + 30]!r}"


def cause(ours_ctx: str, theirs: dict[str, Any], lm: Any, hf_model: Any | None) -> str:
    """Why two scorers disagree on one question: prompt text, token ids, or the arithmetic alone."""
    if ours_ctx != theirs["context"]:
        return "prompt: " + first_difference(ours_ctx, theirs["context"])
    if hf_model is not None:
        ours_ids = lm.lm.encode_context(ours_ctx) + lm.lm.encode_continuation(" A")
        ctx_ids, cont_ids = hf_model._encode_pair(ours_ctx, " A")
        if ours_ids != list(ctx_ids) + list(cont_ids):
            return f"tokenisation: sqlshift {ours_ids[:4]}...{ours_ids[-3:]} vs lm-eval {list(ctx_ids)[:4]}..."
    return "numerics: same prompt and tokens (batching/padding or a near tie)"


def main() -> None:
    args = parse_args()
    from sqlshift.benchmarks.mmlu import MMLUBenchmark, MMLUSettings, question_id
    from sqlshift.lm.hf import HFLM
    from sqlshift.benchmarks.lmeval_bridge import adapter, require_lm_eval

    require_lm_eval()
    t0 = time.time()
    lm = Memo(HFLM(args.model, device=args.device, dtype=args.dtype, batch_size=args.batch_size))
    settings = MMLUSettings(benchmark="mmlu", subjects="all", sample=args.n or None, sample_seed=args.seed,
                            mode="letter", k_shot=args.k_shot, batch_size=args.batch_size)
    bench = MMLUBenchmark(settings, args.data_dir)
    questions = bench.questions()
    timings: dict[str, float] = {"load": time.time() - t0}

    t = time.time()
    metrics = bench.evaluate(lm, args.out / "sqlshift")
    rows = {r["id"]: r for r in map(json.loads, (args.out / "sqlshift" / "results.jsonl").read_text().splitlines())}
    timings["sqlshift"] = time.time() - t
    with tempfile.TemporaryDirectory() as d, bench.session(lm, Path(d)):  # its few-shot exemplars and mode
        contexts = {question_id(q): bench.requests(q, lm)[0].context for q in questions}

    files = write_lmeval_data(questions, bench.mmlu_dir(), sorted({q.subject for q in questions}), args.out / "data")
    configs = lmeval_configs(files, args.k_shot)
    runs: dict[str, tuple[dict[str, dict], Any]] = {}
    t = time.time()
    runs["lmeval-adapter"] = (lmeval_predictions(adapter(lm, args.batch_size), configs, questions), None)
    timings["lmeval-adapter"] = time.time() - t
    report_memo = {"requests_answered_from_memory": lm.hits}
    if not args.skip_hf:
        from lm_eval.models.huggingface import HFLM as EvalHFLM

        hf = EvalHFLM(pretrained=lm.lm.model, tokenizer=lm.tokenizer, batch_size=args.batch_size)
        t = time.time()
        runs["lmeval-hf"] = (lmeval_predictions(hf, lmeval_configs(files, args.k_shot), questions), hf)
        timings["lmeval-hf"] = time.time() - t

    report: dict[str, Any] = {"model": args.model, "n": len(questions), "k_shot": args.k_shot,
                              "sqlshift_accuracy": metrics["accuracy"], "timings_s": timings, "runs": {},
                              **report_memo}
    print(f"MMLU cross-check: {len(questions)} questions, {args.k_shot}-shot, model {args.model}")
    print(f"  sqlshift MMLUBenchmark accuracy {metrics['accuracy']:.4f}")
    for name, (preds, hf_model) in runs.items():
        agree, disagreements = 0, []
        for q in questions:
            qid = question_id(q)
            ours, theirs = rows[qid], preds[qid]
            if ours["pred"] == theirs["pred"]:
                agree += 1
                continue
            disagreements.append({"id": qid, "sqlshift": ours["pred"], "lm_eval": theirs["pred"], "gold": q.answer,
                                  "sqlshift_logprobs": ours["scores"], "lm_eval_logprobs": theirs["logprobs"],
                                  "cause": cause(contexts[qid], theirs, lm, hf_model)})
        acc = sum(preds[question_id(q)]["pred"] == q.answer for q in questions) / len(questions)
        causes = Counter(d["cause"].split(":")[0] for d in disagreements)
        prompts_same = sum(contexts[question_id(q)] == preds[question_id(q)]["context"] for q in questions)
        max_diff = max(max(abs(a - b) for a, b in zip(rows[question_id(q)]["scores"], preds[question_id(q)]["logprobs"]))
                       for q in questions)
        report["runs"][name] = {"agree": agree, "n": len(questions), "accuracy": acc, "identical_prompts": prompts_same,
                                "max_abs_logprob_diff": max_diff, "causes": dict(causes),
                                "disagreements": disagreements}
        print(f"  {name}: agreement {agree}/{len(questions)} ({agree / len(questions):.1%}), accuracy {acc:.4f}, "
              f"identical prompts {prompts_same}/{len(questions)}, max |d logprob| {max_diff:.2e}")
        for d in disagreements:
            print(f"    {d['id']}: sqlshift {d['sqlshift']} vs lm-eval {d['lm_eval']} (gold {d['gold']}) -- {d['cause']}")
    print("  timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crosscheck.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
