"""Atomic, umask-respecting writes: readers see the old file (or folder) or the new one.

Every file spinbench writes into a run folder or a cache goes through these helpers: the
content is written to a temporary sibling and renamed over the target, so an interrupted write
never leaves half a file. Temporary files are created private (0600 / 0700) by ``tempfile``;
they get the permissions the user's umask gives ordinary files before they are renamed.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["atomic_directory", "encode_json", "write_json_atomic", "write_text_atomic"]


@functools.cache
def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(path: Path, *, directory: bool) -> None:
    """Give a freshly made private file or folder the permissions of the user's umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        _publish(Path(staging), directory=False)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return target


def encode_json(value: Any) -> Any:
    """A JSON-safe copy of ``value``: numpy scalars and arrays as plain numbers and lists, NaN
    as null, ±infinity as the strings ``"inf"`` / ``"-inf"`` (never a fake number)."""
    if isinstance(value, dict):
        return {str(k): encode_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encode_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return encode_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as JSON atomically (see :func:`encode_json` for non-finite values)."""
    text = json.dumps(encode_json(payload), indent=1, allow_nan=False)
    return write_text_atomic(path, text + "\n")


@contextmanager
def atomic_directory(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a staging folder beside ``directory`` that replaces it when the block succeeds;
    on any failure the staging folder is removed and ``directory`` is left as it was."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        _publish(staging, directory=True)  # files inside were made with the umask already
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
