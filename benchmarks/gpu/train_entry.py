"""``sqlshift train`` without the CLI module, for ``accelerate launch``/plain runs on the GPU machine.

    python3 benchmarks/gpu/train_entry.py CONFIG MODEL OUTPUT [key=value ...]
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from sqlshift.train.trainer import run_train

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    run_train(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:])
