"""Reading small files an operator points us at (secrets, configuration) safely.

A path in a configuration can name anything: a FIFO (an ``open`` for reading waits for a
writer for ever), a device such as ``/dev/zero`` (endless), a multi-gigabyte file. Every
command reads such files through ``read_small_file``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_small_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``; OSError or ValueError naming
    the problem otherwise. Opened without blocking, so a FIFO cannot hang the loader, and
    read with a bound, so /dev/zero cannot fill memory."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > max_bytes:
            raise ValueError(f"is larger than {max_bytes} bytes")
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as file:
            data = file.read(max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:  # grew while we read it
        raise ValueError(f"is larger than {max_bytes} bytes")
    return data


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old file or the new one,
    never half of one: a sibling file, flushed to disk (fsync), renamed over ``path``,
    then the folder synced so the rename itself survives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
