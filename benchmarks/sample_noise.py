"""How much a small evaluation sample can tell: the seed study's n=100, redone on a full run directory.

Prints, for model A (e.g. baseline) and model B (e.g. a run): their accuracy on the seed-42 sample of n items, the
95% range of A's accuracy over random samples of n, and how often a paired test on n items finds B's real gain.
Works for any benchmark folder (items are paired by id).

    python benchmarks/sample_noise.py runs/qwen15-s3 baseline run1-eager --n 100 --bench spider-dev
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from sqlshift.stats import mcnemar, wilson_ci
from sqlshift.report.load import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--bench", default="spider-dev", help="benchmark folder under models/<key>/")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--draws", type=int, default=2000)
    x = ap.parse_args()
    a, b = (load_model(x.run_dir / "models" / key).benches[x.bench].outcomes() for key in (x.a, x.b))
    # numeric ids (rows without an id: the example index) sort as numbers, so the seed-42 sample follows the index
    idx = sorted(a.keys() & b.keys(), key=lambda i: (0, int(i), "") if i.isdigit() else (1, 0, i))
    seed42 = random.Random(42).sample(idx, x.n)
    for name, o in ((x.a, a), (x.b, b)):
        k = sum(o[i] for i in seed42)
        lo, hi = wilson_ci(k, x.n)
        print(f"{name}: all {len(idx)}: {100 * sum(o[i] for i in idx) / len(idx):.1f}%; seed-42 n={x.n}: "
              f"{100 * k / x.n:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]")
    print(f"paired p on the seed-42 sample: {mcnemar([a[i] for i in seed42], [b[i] for i in seed42])['p_value']:.2g}")
    rng, accs, gains, found = random.Random(0), [], [], 0
    for _ in range(x.draws):
        s = rng.sample(idx, x.n)
        accs.append(100 * sum(a[i] for i in s) / x.n)
        gains.append(100 * (sum(b[i] for i in s) - sum(a[i] for i in s)) / x.n)
        found += mcnemar([a[i] for i in s], [b[i] for i in s])["p_value"] < 0.05
    accs.sort()
    gains.sort()
    lo, hi = int(0.025 * x.draws), int(0.975 * x.draws) - 1
    print(f"{x.a} over {x.draws} random samples of {x.n}: 95% of accuracy in [{accs[lo]:.0f}, {accs[hi]:.0f}]%")
    print(f"gain {x.b} - {x.a}: 95% in [{gains[lo]:+.0f}, {gains[hi]:+.0f}] points; "
          f"p < 0.05 in {100 * found / x.draws:.0f}% of samples")


if __name__ == "__main__":
    main()
