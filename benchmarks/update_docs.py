"""Regenerate the measured tables of docs/ from benchmarks/results/*.md: the speed tables in
docs/performance.md (between ``<!-- speed:start -->`` and ``<!-- speed:end -->``) and the peers'
comparison in docs/evaluation.md (``<!-- peers:start -->`` ... ``<!-- peers:end -->``).

python benchmarks/update_docs.py
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent / "docs"
SECTIONS = {
    "speed": (DOCS / "performance.md", ("speed_cpu.md", "speed_cuda.md")),
    "peers": (DOCS / "evaluation.md", ("peers.md",)),
}
"""marker -> (page, result files shown between its markers)"""


def section(names: tuple[str, ...]) -> str:
    parts = []
    for name in names:
        p = HERE / "results" / name
        if p.exists():
            text = re.sub(r"^# ", "### ", p.read_text().strip(), flags=re.M)
            parts.append(text.replace("](peers.png)", "](../benchmarks/results/peers.png)"))
    return "\n\n".join(parts)


def update(page: Path, marker: str, body: str) -> bool:
    """Replace the text between ``marker``'s start and end comments of ``page``; False when the
    page has no such markers (nothing is written)."""
    text = page.read_text()
    pattern = rf"<!-- {marker}:start -->.*<!-- {marker}:end -->"
    if not re.search(pattern, text, flags=re.S):
        return False
    new = re.sub(pattern, lambda _: f"<!-- {marker}:start -->\n{body}\n<!-- {marker}:end -->", text, flags=re.S)
    page.write_text(new)
    return True


def main() -> None:
    for marker, (page, names) in SECTIONS.items():
        if not update(page, marker, section(names)):
            raise SystemExit(f"{page}: no <!-- {marker}:start/end --> markers")
        print(f"updated {page} ({marker})")


if __name__ == "__main__":
    main()
