"""Multi-process training with no code change: two CPU ranks through torchrun (gloo DDP), the data tokenised once.

On GPUs the same command is ``accelerate launch --num_processes N -m sqlshift.cli train ...`` (NCCL).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sqlshift.data.demo import ensure_demo
from sqlshift.lm.models import load_model
from sqlshift.train.data import PREPARED

TRAIN_CONFIG = Path(__file__).parents[1] / "src" / "sqlshift" / "configs" / "train" / "embedded-cpu.yaml"


@pytest.mark.skipif(shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
                    reason="torchrun not installed")
def test_two_ranks_share_the_data_and_write_one_adapter(tiny_model_dir: Path, tmp_path: Path) -> None:
    demo = ensure_demo(tmp_path / "demo")
    out = tmp_path / "ddp"
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    launcher = tmp_path / "train_logged.py"  # `sqlshift train` with its INFO log lines on stderr
    launcher.write_text("import logging, sys\nlogging.basicConfig(level=logging.INFO)\nfrom sqlshift.cli import app\n"
                        "app(sys.argv[1:], prog_name='sqlshift')\n")
    cmd = [torchrun, "--nproc_per_node", "2", str(launcher), "train", str(TRAIN_CONFIG),
           "--model", str(tiny_model_dir), "-o", str(out), "max_steps=2", "per_device_batch_size=2",
           "gradient_accumulation_steps=1", f"data.spider_dir={demo}", "data.limit_n=16", "save_steps=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    # 16 examples, 2 ranks x 2 per step: 4 steps per epoch, so 2 steps are half an epoch (one rank alone: a quarter)
    assert state["global_step"] == 2 and state["epoch"] == pytest.approx(0.5)
    # The data is tokenised once: process 1 reads process 0's cached files (not its own), and the shared copy is gone.
    said = re.findall(r"process (\d) reads the tokenised training data from (cache-\w+\.arrow(?:, cache-\w+\.arrow)*)",
                      " ".join((proc.stdout + proc.stderr).split()))
    files = dict(said)  # rank 0 may say it twice: on sqlshift's console handler and on the launcher's root one
    assert sorted(files) == ["0", "1"] and files["0"] == files["1"], said
    assert not (out / PREPARED).exists()
    load_model(str(tiny_model_dir), adapter=out)  # the adapter saved by rank 0 loads
