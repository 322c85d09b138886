"""Small PNG plots shared by the evaluation, certification and attack reports (matplotlib,
imported on first use with the Agg backend)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType


def pyplot() -> ModuleType:
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def line_plot(
    path: Path,
    series: dict[str, tuple[list[float], list[float]]],
    xlabel: str,
    ylabel: str,
    title: str,
    step: bool = False,
) -> Path:
    """One small PNG of curves sharing axes, y in [0, 1] (accuracy-like quantities)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, (x, y) in series.items():
        if step:
            ax.step(x, y, where="post", label=label)
        else:
            ax.plot(x, y, "o-", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
