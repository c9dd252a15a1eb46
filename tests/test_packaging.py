"""The wheel ships every package file, and a non-editable install finds its configs and presets.

An editable install reads ``src/`` directly, so it cannot show a file missing from ``package-data`` (issue 14:
``configs/train/*.yaml`` were not in the wheel and ``sqlshift run`` failed on ``embedded-cpu`` after
``pip install .``). This test builds the wheel from a copy of the sources, checks its contents against ``src/``,
installs it into a folder with ``pip install --target`` and loads every shipped config from there, in a fresh
interpreter whose ``sqlshift`` comes from that folder (dependencies come from the current environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "sqlshift"

pytestmark = pytest.mark.packaging

# Run in the interpreter that imports the installed copy: prints what it loaded, as JSON.
LOAD_SHIPPED = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import yaml
    import sqlshift
    from sqlshift.study.config import load_experiment
    from sqlshift.train.trainer import load_train_config, resolve_train_config
    from sqlshift.data.demo import ensure_demo

    pkg = Path(sqlshift.__file__).parent
    presets = {}
    for p in sorted((pkg / "configs" / "train").glob("*.yaml")):
        cfg = load_train_config(p)
        presets[p.stem] = cfg.model_dump(mode="json")
    experiments = {}
    for p in sorted((pkg / "configs").glob("*.yaml")):
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
        assert isinstance(raw, dict), p
        cfg = load_experiment(p)
        experiments[p.stem] = [str(resolve_train_config(r.config)) for r in cfg.runs]
    demo = ensure_demo(Path(sys.argv[1]))
    print(json.dumps({"file": sqlshift.__file__, "presets": presets, "experiments": experiments,
                      "embedded_cpu": str(resolve_train_config("embedded-cpu")),
                      "demo_dbs": sorted(p.name for p in (demo / "spider" / "database").iterdir())}))
""")


def package_files() -> list[str]:
    """Every file of the package in ``src/`` as a wheel member name (``sqlshift/...``), caches left out."""
    return sorted(str(p.relative_to(PKG.parent).as_posix()) for p in PKG.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")


def build_wheel(tmp: Path) -> Path:
    """``pip wheel`` from a clean copy of the sources, so a stale ``build/`` in the checkout cannot fill the gaps."""
    src = tmp / "src-copy"
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp / "dist"
    # No build isolation: offline, with the setuptools of this environment (the `test` extra requires it).
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(dist), str(src)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"pip wheel failed (the test extra brings setuptools and wheel):\n{res.stderr}"
    wheels = list(dist.glob("sqlshift-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_every_package_file(wheel: Path) -> None:
    """Configs, training presets, demo data and modules: all of src/sqlshift is in the wheel, and the entry point."""
    expected = package_files()
    assert any(f.startswith("sqlshift/configs/train/") for f in expected)  # the files of issue 14 exist in src
    assert any(f.startswith("sqlshift/demo/databases/") for f in expected)
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
        metadata = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/METADATA"))
    missing = [f for f in expected if f not in names]
    assert not missing, f"files of src/sqlshift missing from the wheel (package-data in pyproject.toml): {missing}"
    assert "sqlshift = sqlshift.cli:app" in entry_points
    # deepeval is an extra, not a requirement of the base install.
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: deepeval")]
    assert requires and all("extra ==" in line for line in requires), requires


def test_installed_wheel_loads_every_shipped_config(wheel: Path, tmp_path: Path) -> None:
    """``pip install`` (not -e) of the wheel, then every training preset and experiment config loads from it."""
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target",
                          str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    # Only the target on PYTHONPATH, run from an empty folder: `sqlshift` cannot come from src/ or the checkout.
    env = {**os.environ, "PYTHONPATH": str(site), "SQLSHIFT_DATA_DIR": str(tmp_path / "data")}
    work = tmp_path / "cwd"
    work.mkdir()
    res = subprocess.run([sys.executable, "-c", LOAD_SHIPPED, str(tmp_path / "demo")], capture_output=True,
                         text=True, env=env, cwd=work, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    installed = site / "sqlshift"
    assert Path(out["file"]).parent == installed, out["file"]

    assert sorted(out["presets"]) == sorted(p.stem for p in (PKG / "configs" / "train").glob("*.yaml"))
    assert "embedded-cpu" in out["presets"] and Path(out["embedded_cpu"]).is_file()
    assert sorted(out["experiments"]) == sorted(p.stem for p in (PKG / "configs").glob("*.yaml"))
    # The default study's run names a preset by bare name: it must resolve to the installed copy.
    for runs in out["experiments"].values():
        for config in runs:
            assert Path(config).is_file() and Path(config).is_relative_to(installed), config
    assert out["demo_dbs"] == sorted(p.stem for p in (PKG / "demo" / "databases").glob("*.sql"))


def test_installed_wheel_runs_shipped_studies_by_name(wheel: Path, tmp_path: Path) -> None:
    """From the wheel alone: --version answers, configs lists the studies, run takes one by name (it starts and
    checks its data: here a missing folder, so it stops with one line naming it)."""
    site = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "-q", "--target",
                          str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    env = {**os.environ, "PYTHONPATH": str(site), "SQLSHIFT_DATA_DIR": str(tmp_path / "nodata"), "HF_HUB_OFFLINE": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sqlshift", *args], capture_output=True, text=True, env=env,
                              cwd=tmp_path, timeout=300)

    assert cli("--version").stdout.startswith("sqlshift ")
    listed = cli("configs").stdout
    assert all(f"  {p.stem} " in listed for p in (PKG / "configs").glob("*.yaml")), listed
    res = cli("run", "general-embedded", "-o", str(tmp_path / "run"))
    assert res.returncode == 2 and "does not exist" not in res.stderr.split("cannot run")[0], res.stderr
    assert "the experiment cannot run" in res.stderr and "nodata" in res.stderr and "Traceback" not in res.stderr


def test_checkout_configs_are_links_to_the_shipped_ones() -> None:
    """``configs/`` in the checkout points into the package, so a study edited there is the one the wheel ships
    (an in-place edit that replaced a link with a copy, as ``sed -i`` does, would let the two drift apart)."""
    checkout = PKG.parents[1] / "configs"
    for p in sorted(checkout.iterdir()):
        assert p.is_symlink() and p.resolve() == (PKG / "configs" / p.name).resolve(), f"{p} is not a link into {PKG}"
