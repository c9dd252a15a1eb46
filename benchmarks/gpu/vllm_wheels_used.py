"""Which of the carried vLLM wheels a run imported: top-level names logged by importspy/sitecustomize.py (every
process of a `sqlshift run` through vLLM) matched against each wheel's top-level modules. Writes the kept wheels as
name==version lines (benchmarks/gpu/vllm-offline-wheels.txt, which pack.sh then carries instead of all 111).

Usage: python benchmarks/gpu/vllm_wheels_used.py IMPORTS.txt WHEEL_DIR [-o benchmarks/gpu/vllm-offline-wheels.txt]
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path


def top_level_names(wheel: Path) -> set[str]:
    """Importable top-level names a wheel installs (packages, modules, extension modules)."""
    names = set()
    with zipfile.ZipFile(wheel) as zf:
        for n in zf.namelist():
            first = n.split("/")[0]
            if first.endswith((".dist-info", ".data")):
                continue
            names.add(first if "/" in n else first.split(".")[0])  # a package folder, or module.py / mod.*.so
    return names


def requirement(wheel: Path) -> str:
    """``name==version`` from a wheel's file name."""
    name, version = wheel.name.split("-")[:2]
    return f"{name.replace('_', '-').lower()}=={version}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("imports", type=Path)
    ap.add_argument("wheels", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=Path(__file__).with_name("vllm-offline-wheels.txt"))
    args = ap.parse_args()
    imported = set(args.imports.read_text().split())
    kept, dropped = [], []
    for whl in sorted(args.wheels.glob("*.whl")):
        (kept if top_level_names(whl) & imported else dropped).append(whl)
    size = lambda ws: sum(w.stat().st_size for w in ws) / 2**20  # noqa: E731
    header = (f"# vLLM 0.26.0 wheels that offline runs imported (benchmarks/gpu/importspy over smoke.sh / sqlshift eval):\n"
              f"# {len(kept)} of {len(kept) + len(dropped)} wheels, {size(kept):.0f} of {size(kept + dropped):.0f} MiB\n")
    args.out.write_text(header + "".join(requirement(w) + "\n" for w in kept))
    print(header + "dropped: " + ", ".join(f"{requirement(w)} ({w.stat().st_size / 2**20:.0f} MiB)" for w in dropped))


if __name__ == "__main__":
    main()
