"""A real small disk for full-disk tests: a tmpfs mounted on a test's folder (root only; the test is skipped,
saying why, elsewhere). tmpfs counts 4 KB pages; writes past its size fail with ENOSPC from the kernel."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(mnt: Path, size: str = "4m") -> Iterator[Path]:
    """`mnt` (created) with a tmpfs of `size` mounted on it, unmounted afterwards."""
    mnt.mkdir(parents=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                                           capture_output=True, check=False).returncode != 0:
        pytest.skip("needs root to mount a tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def resize(mnt: Path, size: str) -> None:
    """Remount the tmpfs at `mnt` with another size, its files kept."""
    subprocess.run(["mount", "-o", f"remount,size={size}", str(mnt)], check=True)


def fill(folder: Path) -> None:
    """Write a file `filler` into `folder` until its disk is full (ENOSPC)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"x" * 65536)
    finally:
        os.close(fd)
