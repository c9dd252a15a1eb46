"""lm-evaluation-harness (optional, ``pip install "lm-eval[ifeval]==0.4.13"``) behind sqlshift's ``LM``.

Two pieces: :func:`adapter` wraps any sqlshift ``LM`` (HF with a LoRA adapter at scale λ, vLLM...) as an lm-eval
model, and :func:`task_config` loads lm-eval's own task YAML for one of our benchmarks with its dataset pointed at
the local file (``dataset_path: json`` + ``data_files``) -- rows whose layout differs from the Hub copy lm-eval
expects are mapped to it first, so lm-eval's own prompt templates and metrics run unchanged. sqlshift's native
benchmarks are checked against :func:`run_lmeval` in the tests and by ``benchmarks/mmlu_crosscheck.py``.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlshift.lm.api import LM, GenerateRequest, LoglikelihoodRequest
from sqlshift.errors import ConfigError

LMEVAL_VERSION = "0.4.13"
INSTALL = f'pip install "lm-eval[ifeval]=={LMEVAL_VERSION}"  (or: pip install "sqlshift[general]")'


def require_lm_eval() -> None:
    """A one-line :class:`ConfigError` naming the install command when lm-eval is missing."""
    try:
        version = importlib.metadata.version("lm_eval")
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError("this needs lm-evaluation-harness, which is not installed", INSTALL) from None
    if version != LMEVAL_VERSION:
        import warnings

        warnings.warn(f"lm-eval {version} installed; sqlshift's prompts were checked against {LMEVAL_VERSION}",
                      stacklevel=2)


# ---------------------------------------------------------------- the model adapter


def adapter(lm: LM, batch_size: int | None = None) -> Any:
    """An ``lm_eval.api.model.LM`` whose calls go to ``lm`` (so lm-eval tasks score exactly what sqlshift serves)."""
    require_lm_eval()
    from lm_eval.api.model import LM as LMEvalLM

    class SqlshiftLM(LMEvalLM):
        """lm-eval's three request types mapped onto sqlshift's two calls."""

        def __init__(self) -> None:
            super().__init__()
            self.lm, self.batch_size = lm, batch_size

        def loglikelihood(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            reqs = [LoglikelihoodRequest(*r.args) for r in requests]
            return [(float(ll), bool(g)) for ll, g in self.lm.loglikelihood(reqs, batch_size=self.batch_size)]

        def loglikelihood_rolling(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[float]:
            raise NotImplementedError("sqlshift's LM has no rolling log-likelihood (perplexity tasks)")

        def generate_until(self, requests: Sequence[Any], disable_tqdm: bool = False) -> list[str]:
            reqs = [generate_request(*r.args) for r in requests]
            return [g.text for g in self.lm.generate(reqs, batch_size=self.batch_size)]

        @property
        def tokenizer_name(self) -> str:
            return str(getattr(self.lm.tokenizer, "name_or_path", "sqlshift")).replace("/", "__")

        def chat_template(self, chat_template: bool | str = False) -> str | None:
            return getattr(self.lm.tokenizer, "chat_template", None)

        def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
            return self.lm.tokenizer.apply_chat_template(chat_history, tokenize=False,
                                                         add_generation_prompt=add_generation_prompt)

    return SqlshiftLM()


def generate_request(context: str, gen_kwargs: dict[str, Any]) -> GenerateRequest:
    """lm-eval's ``(context, {"until": [...], "max_gen_toks": N, ...})`` as a greedy sqlshift request."""
    until = gen_kwargs.get("until") or []
    stops = (until,) if isinstance(until, str) else tuple(until)
    return GenerateRequest(context, int(gen_kwargs.get("max_gen_toks", 256)), stops)


# ---------------------------------------------------------------- tasks on local files


def _arc_doc(row: dict[str, Any]) -> dict[str, Any]:
    labels = [chr(ord("A") + i) for i in range(len(row["choices"]))]
    return {"choices": {"text": row["choices"], "label": labels}, "answerKey": labels[int(row["gold"])]}


def _boolq_doc(row: dict[str, Any]) -> dict[str, Any]:
    return {"label": int(bool(row["answer"]))}


def _truthfulqa_doc(row: dict[str, Any]) -> dict[str, Any]:
    targets = row["mc1_targets"]
    return {"mc1_targets": {"choices": list(targets), "labels": list(targets.values())}, "mc2_targets": None}


#: benchmark -> (lm-eval task YAML, the split it evaluates, row -> fields of the Hub layout lm-eval expects)
UPSTREAM: dict[str, tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]] | None]] = {
    "hellaswag": ("hellaswag/hellaswag.yaml", "validation", None),
    "arc_easy": ("arc/arc_easy.yaml", "test", _arc_doc),
    "arc_challenge": ("arc/arc_challenge.yaml", "test", _arc_doc),
    "winogrande": ("winogrande/default.yaml", "validation", None),
    "boolq": ("super_glue/boolq/default.yaml", "validation", _boolq_doc),
    "piqa": ("piqa/piqa.yaml", "validation", None),
    "truthfulqa_mc1": ("truthfulqa/truthfulqa_mc1.yaml", "validation", _truthfulqa_doc),
    "gsm8k": ("gsm8k/gsm8k.yaml", "test", None),
    "ifeval": ("ifeval/ifeval.yaml", "train", None),
}


def upstream_yaml(name: str) -> Path:
    """Path of lm-eval's own YAML for a benchmark."""
    require_lm_eval()
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).parent / UPSTREAM[name][0]


def task_config(name: str, data_file: Path, **overrides: Any) -> dict[str, Any]:
    """lm-eval's task config for ``name``, reading ``data_file`` (local JSON lines or array) instead of the Hub.

    The eval split is the only one there, so few-shot examples (when ``num_fewshot`` is overridden) come from it,
    with lm-eval's sampler excluding the document being evaluated.
    """
    from lm_eval.tasks._yaml_loader import load_yaml

    _, split, adapt = UPSTREAM[name]
    cfg = load_yaml(upstream_yaml(name), resolve_func=True)
    cfg.pop("tag", None)
    cfg.update(dataset_path="json", dataset_name=None, dataset_kwargs={"data_files": {split: str(data_file)}},
               training_split=None, validation_split=None, test_split=None)
    cfg["test_split" if split in ("test", "train") else "validation_split"] = split
    cfg["fewshot_split"] = split
    upstream = cfg.get("process_docs")
    if adapt is not None:
        cfg["process_docs"] = lambda ds: (upstream or (lambda d: d))(ds.map(adapt))
    cfg.update(overrides)
    return cfg


def load_tasks(configs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{task name: lm-eval Task}`` built from inline configs, without indexing lm-eval's task folder."""
    from lm_eval.tasks import TaskManager

    return dict(TaskManager(include_defaults=False).load(list(configs))["tasks"])


def run_lmeval(lm_eval_model: Any, configs: Sequence[dict[str, Any]], limit: int | None = None,
               samples: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """lm-eval's evaluator on inline task configs; returns its results dict with per-document ``samples``."""
    from lm_eval.evaluator import evaluate

    return evaluate(lm=lm_eval_model, task_dict=load_tasks(configs), limit=limit, samples=samples,
                    log_samples=True, bootstrap_iters=0, verbosity="WARNING")
