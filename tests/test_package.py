"""One version for the package, its metadata and the HTTP service."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

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
    from deepraft.service.app import create_app
    from deepraft.service.core import ServiceSettings

    app = create_app(ServiceSettings(device="cpu"))
    assert app.version == deepraft.__version__
