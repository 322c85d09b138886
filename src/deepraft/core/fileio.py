"""Atomic file writes: a temporary file in the target's folder, then a rename.

A reader never sees a half-written file and a crash leaves no partial output. The lowest
layer of the package (standard library only), shared by image I/O, checkpoints, cards and
reports.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def process_umask() -> int:
    """The process umask, read without changing it (os.umask would set it for all threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def finish_temp_file(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Give a temporary file the permissions of a normally created file and move it into place."""
    os.chmod(tmp, 0o666 & ~process_umask())
    os.replace(tmp, path)


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], None], suffix: str = ".part") -> None:
    """Call ``write(tmp)`` to fill a temporary file next to ``path``, then move it into place
    (the folder is created if needed; on any failure the temporary file is removed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        finish_temp_file(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so a reader never sees a half-written file and a crash leaves no partial output."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    atomic_write_with(path, write)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))
