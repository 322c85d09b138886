"""The package's layering: what may import what, and what ``import deepraft`` loads.

    cli, service                                   (3: entry points)
       |
    eval, smoothing, attacks, export, demo          (2: measurement and reports)
       |
    train, calibrate, card, api, engine,           (1: the model in use and in training)
    onnx_export
       |
    config, fileio, measures, imageio, weights_io,  (0: pure core)
    plotting, edits, models, augment, data

Every import of a deepraft module (at the top of a file, inside a function, or for type
checking only) goes to the same layer or one below, and the modules import each other in no
cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepraft"

LAYERS: list[tuple[str, ...]] = [
    (
        "deepraft.config",
        "deepraft.fileio",
        "deepraft.measures",
        "deepraft.imageio",
        "deepraft.weights_io",
        "deepraft.plotting",
        "deepraft.edits",
        "deepraft.models",
        "deepraft.augment",
        "deepraft.data",
    ),
    (
        "deepraft",
        "deepraft.train",
        "deepraft.calibrate",
        "deepraft.card",
        "deepraft.api",
        "deepraft.engine",
        "deepraft.onnx_export",
    ),
    ("deepraft.eval", "deepraft.smoothing", "deepraft.attacks", "deepraft.export", "deepraft.demo"),
    ("deepraft.cli", "deepraft.service"),
]

UPWARD_EXCEPTIONS: set[tuple[str, str]] = set()
"""(importer, imported) pairs allowed to point upward: none."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The deepraft modules that ``name`` imports anywhere in its file (``from P import m`` of a
    submodule ``m`` counts as importing ``P.m``, not the package ``P`` around it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & known
            out |= subs if len(subs) == len(node.names) else subs | {target}
    return {m for m in out if m in known and m != name}


def _layer(module: str) -> int:
    best, level = -1, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, level = len(p), i
    return level


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def test_every_module_has_a_layer():
    assert [m for m in _modules() if _layer(m) < 0] == []


def test_no_import_points_upward():
    upward = sorted(
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in _graph().items()
        for b in targets
        if _layer(b) > _layer(a) and (a, b) not in UPWARD_EXCEPTIONS
    )
    assert upward == []


def test_no_import_cycle():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_the_checker_sees_an_upward_import(tmp_path):
    """The checker itself: a core module importing the training loop is caught."""
    core = tmp_path / "deepraft" / "imageio.py"
    core.parent.mkdir()
    core.write_text("def f():\n    from .train.loop import train\n")
    found = _imports("deepraft.imageio", core, {"deepraft.train.loop", "deepraft.train", "deepraft.imageio"})
    assert found == {"deepraft.train.loop"}
    assert _layer("deepraft.train.loop") > _layer("deepraft.imageio")


FORBIDDEN_ON_LOAD = ("deepraft.train", "deepraft.data", "deepraft.augment", "deepraft.eval", "kornia", "matplotlib")


@pytest.mark.parametrize("code", ["import deepraft", "import deepraft; deepraft.load(device='cpu')"])
def test_import_and_load_need_no_training_code(code):
    """A fresh interpreter: the library and its bundled model load without the training loop,
    the data package, the augmentations, kornia or matplotlib."""
    probe = (
        f"{code}\nimport sys\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] == 'kornia' or "
        f"any(m == p or m.startswith(p + '.') for p in {FORBIDDEN_ON_LOAD!r})))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]"


def test_no_docstring_used_as_data():
    users = sorted(
        name
        for name, path in _modules().items()
        if any(isinstance(n, ast.Name) and n.id == "__doc__" for n in ast.walk(ast.parse(path.read_text())))
    )
    assert users == []


def test_recorded_methods_survive_python_OO():
    code = (
        "from deepraft.eval.runner import METHOD; from deepraft.onnx_export import USAGE; "
        "from deepraft.attacks.forgery import METHOD as FORGERY; "
        "assert METHOD.startswith('For every photo') and USAGE.startswith('A client'); "
        "assert FORGERY.startswith('An attacker who cannot'); print('ok')"
    )
    r = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "ok", r.stderr[-2000:]
