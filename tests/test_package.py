"""One version for the package, its metadata and the HTTP service."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

import deepraft

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pip's vendored copy of the same parser
    from pip._vendor import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]


def test_one_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", deepraft.__version__)
    assert importlib.metadata.version("deepraft") == deepraft.__version__
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]  # no second copy
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "deepraft.__version__"}


def test_service_reports_the_package_version():
    from deepraft.apps.service.app import create_app
    from deepraft.apps.service.core import ServiceSettings

    app = create_app(ServiceSettings(device="cpu"))
    assert app.version == deepraft.__version__


ROOT_ENTRIES = {
    ".ci",
    ".gitignore",
    "README.md",
    "benchmarks",
    "configs",
    "docs",
    "examples",
    "pyproject.toml",
    "reports",
    "scripts",
    "src",
    "tests",
    "training",
}
"""What the repository's root holds: the product and what proves it, nothing else."""


def _root_files(*args: str) -> set[str]:
    out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return {line.split("/")[0] for line in out.splitlines() if line}


def test_the_root_holds_no_scratch_file():
    """Tracked or waiting to be added (untracked and not ignored): every entry at the root is a
    known one, so a tool's temp file left in the working folder fails here before it is committed."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    found = _root_files("ls-files") | _root_files("ls-files", "--others", "--exclude-standard")
    assert found - ROOT_ENTRIES == set()
