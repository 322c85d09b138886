"""README command 1's plain install, in a fresh virtual environment: the core scans with ONNX
Runtime (the bundled model's shipped graph, no ``onnx`` package), lacks the serving, training and
evaluation libraries, and a command that needs an extra stops with a message naming it.

PyTorch is not installed again (a multi-gigabyte copy): the environment sees this interpreter's
torch and the packages torch itself requires, linked in by name, and nothing else; pip installs
the rest of the core from the package index as a user's ``pip install`` would.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO

pytestmark = pytest.mark.slow

NOT_IN_CORE = ("fastapi", "uvicorn", "kornia", "matplotlib", "scipy", "torchattacks", "ssimulacra2", "onnx")


def _requirements(dist: metadata.Distribution) -> list[str]:
    names = []
    for req in dist.requires or []:
        if "extra ==" in req:
            continue
        names.append(re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0])
    return names


def _closure(root: str) -> list[metadata.Distribution]:
    """``root``'s installed distribution and every one it requires, recursively."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [root]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        todo.extend(_requirements(dist))
    return list(seen.values())


def _link_torch(site: Path) -> None:
    """Symlink torch and its requirements (code and metadata) into ``site``."""
    for dist in _closure("torch"):
        base = Path(str(dist.locate_file("")))
        tops = {Path(str(f)).parts[0] for f in dist.files or []}
        for top in tops:
            src = base / top
            if top.endswith(".pth") or top == ".." or not src.exists() or (site / top).exists():
                continue
            (site / top).symlink_to(src)


def _copy_project(dest: Path) -> None:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, dest / name)
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


@pytest.fixture(scope="module")
def core_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("core-install")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    _link_torch(site)
    project = root / "project"
    project.mkdir()
    _copy_project(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", str(project)],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=root,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return venv, env


def _run(venv: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / a) if i == 0 else a for i, a in enumerate(args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=venv.parent,
    )


def test_core_install_lacks_the_extras(core_env):
    venv, env = core_env
    probe = f"import importlib.util as u; print([m for m in {NOT_IN_CORE!r} if u.find_spec(m)])"
    r = _run(venv, env, "python", "-c", probe)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_core_install_scans_with_the_shipped_graph(core_env):
    venv, env = core_env
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "import deepraft\n"
        "s = deepraft.load(device='cpu')\n"
        "print(s.engine, s._read.source)\n"
    )
    r = _run(venv, env, "python", "-c", code)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["onnxruntime", "shipped"]


def test_core_install_runs_the_demo(core_env, tmp_path):
    venv, env = core_env
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted(EXAMPLES.glob("*.jpg"))[:2]:
        shutil.copy2(p, photos / p.name)
    r = _run(venv, env, "deepraft", "demo", str(photos), "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "onnxruntime unavailable" not in r.stderr
    assert len(list((tmp_path / "out").rglob("*.*"))) >= 2


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["serve"], "serve"),
        (
            ["train", "--config", str(REPO / "configs" / "default.yaml"), "--data", str(EXAMPLES), "--run-name", "r"],
            "train",
        ),
        (["eval", "--data", str(EXAMPLES), "--out", "eval-out"], "eval"),
    ],
)
def test_a_command_without_its_extra_names_it(core_env, args, extra):
    venv, env = core_env
    r = _run(venv, env, "deepraft", *args)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert f"needs the '{extra}' extra: pip install 'deepraft[{extra}]'" in " ".join(r.stderr.split())
