"""The package's layering: one folder per layer, what may import what, and what ``import deepraft``
loads.

    apps/, integrations/         (4: command line, demo, HTTP service; Synapse module)
       |
    evaluation/                  (3: calibration, card export, eval, smoothing, adversaries)
       |
    runtime/, training/, deepraft (2: the model in use; the model in training)
       |
    models/, edits/              (1: networks and the stamp; benign edits and grids)
       |
    core/                        (0: configs, image and file I/O, cards, weights, measures)

Every module lives in a layer folder (only ``__init__.py`` and ``__main__.py`` beside them);
every import of a deepraft module (at the top of a file, inside a function, or for type
checking only) goes to the same layer or one below; runtime and training, on one layer, do
not import each other; and the modules import each other in no cycle.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepraft"

LAYERS: list[tuple[str, ...]] = [
    ("deepraft.core",),
    ("deepraft.models", "deepraft.edits"),
    ("deepraft", "deepraft.runtime", "deepraft.training"),
    ("deepraft.evaluation",),
    ("deepraft.apps", "deepraft.integrations"),
]
LAYER_FOLDERS = {p.rpartition(".")[2] for layer in LAYERS for p in layer if p != "deepraft"}
"""The folders of ``src/deepraft`` that hold the layers (``weights`` holds data, no code)."""

SEPARATE: set[frozenset[str]] = {frozenset({"deepraft.runtime", "deepraft.training"})}
"""Packages on one layer that must not import each other: inference never loads training code."""

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


def test_every_module_is_in_a_layer_folder():
    top = sorted(p.name for p in SRC.iterdir() if p.name not in {"__pycache__", "weights"})
    assert set(top) - {"__init__.py", "__main__.py"} == LAYER_FOLDERS, top
    assert [p for p in SRC.rglob("*.py") if p.parent == SRC and p.name not in {"__init__.py", "__main__.py"}] == []


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_runtime_and_training_stay_apart():
    crossing = sorted(
        f"{a} imports {b}"
        for a, targets in _graph().items()
        for b in targets
        if frozenset({_package(a), _package(b)}) in SEPARATE
    )
    assert crossing == []


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
    """The checker itself: a core module importing the training loop is caught, and runtime and
    training are kept apart."""
    core = tmp_path / "deepraft" / "core" / "imageio.py"
    core.parent.mkdir(parents=True)
    core.write_text("def f():\n    from ..training.loop import train\n")
    known = {"deepraft.training.loop", "deepraft.training", "deepraft.core.imageio"}
    assert _imports("deepraft.core.imageio", core, known) == {"deepraft.training.loop"}
    assert _layer("deepraft.training.loop") > _layer("deepraft.core.imageio")
    assert frozenset({_package("deepraft.runtime.stamper"), _package("deepraft.training.loop")}) in SEPARATE


FORBIDDEN_ON_LOAD = (
    "deepraft.training",
    "deepraft.training",
    "deepraft.training",
    "deepraft.evaluation",
    "kornia",
    "matplotlib",
)


@pytest.mark.parametrize("code", ["import deepraft", "import deepraft; deepraft.load(device='cpu')"])
def test_import_and_load_need_no_training_code(code):
    """A fresh interpreter: the library and its bundled model load without the training loop,
    evaluation, the apps, kornia, matplotlib, scipy or FastAPI."""
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
        "from deepraft.evaluation.runner import METHOD; from deepraft.runtime.graph_export import USAGE; "
        "from deepraft.evaluation.adversaries.forgery import METHOD as FORGERY; "
        "assert METHOD.startswith('For every photo') and USAGE.startswith('A client'); "
        "assert FORGERY.startswith('An attacker who cannot'); print('ok')"
    )
    r = subprocess.run([sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=300)
    assert r.stdout.strip() == "ok", r.stderr[-2000:]
