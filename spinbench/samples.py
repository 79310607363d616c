"""Configurations on disk: one format for every sampler and generator.

A sample set is a folder with ``samples.npz`` (arrays, no pickle) and ``samples.json``
(metadata and provenance). Folders are written atomically (to a temporary sibling, then
renamed), so an interrupted write never leaves a half-written set behind. A cache maps a
request (model, temperatures, method, settings, seed) to such a folder and reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1


@contextmanager
def atomic_directory(directory: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a staging folder beside ``directory`` that replaces it when the block succeeds;
    on any failure the staging folder is removed and ``directory`` is left as it was."""
    target = Path(directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@dataclass(frozen=True)
class Samples:
    """Configurations of one model at a grid of temperatures, from one method.

    ``states`` has shape ``(temps, chains, samples, *lattice)`` in the model's spin dtype
    (generators, whose samples are independent, use one chain). ``info`` holds extra arrays
    with a leading temperature axis, e.g. the acceptance rate ``(temps, chains)``.
    """

    states: np.ndarray
    temps: np.ndarray
    model: dict[str, Any]
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    info: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def n_chains(self) -> int:
        """Number of chains (1 for independent samples)."""
        return int(self.states.shape[1])

    @property
    def n_per_chain(self) -> int:
        """Configurations per chain."""
        return int(self.states.shape[2])

    def metadata(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-friendly."""
        return {
            "format": FORMAT_VERSION,
            "model": self.model,
            "method": self.method,
            "settings": self.settings,
            "seed": self.seed,
            "temps": [float(t) for t in self.temps],
            "shape": list(self.states.shape),
            "dtype": str(self.states.dtype),
            "info": sorted(self.info),
            "provenance": self.provenance,
        }

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write atomically to ``directory`` (replacing an existing set there)."""
        with atomic_directory(directory) as staging:
            arrays = {"states": self.states, "temps": np.asarray(self.temps, np.float64)}
            arrays.update({f"info_{k}": np.asarray(v) for k, v in self.info.items()})
            np.savez(staging / "samples.npz", **arrays)  # type: ignore[arg-type]
            (staging / "samples.json").write_text(json.dumps(self.metadata(), indent=2))
        return Path(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Samples:
        """Read a set written by :meth:`save`; a clear error if it is missing or malformed."""
        source = Path(directory)
        try:
            meta = json.loads((source / "samples.json").read_text())
            with np.load(source / "samples.npz", allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"{source} does not hold a readable sample set: {error}") from error
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{source}: sample format {meta.get('format')!r} is not supported")
        info = {k.removeprefix("info_"): v for k, v in arrays.items() if k.startswith("info_")}
        return cls(
            states=arrays["states"],
            temps=arrays["temps"],
            model=meta["model"],
            method=meta["method"],
            settings=meta["settings"],
            seed=meta["seed"],
            info=info,
            provenance=meta.get("provenance", {}),
        )


def request_key(
    model: dict[str, Any], temps: np.ndarray, method: str, settings: dict[str, Any], seed: int
) -> str:
    """A stable hash naming one request (model, temperatures, method, settings, seed)."""
    request = {
        "model": model,
        "temps": [float(t) for t in np.asarray(temps, np.float64)],
        "method": method,
        "settings": settings,
        "seed": int(seed),
        "format": FORMAT_VERSION,
    }
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(
    root: str | os.PathLike[str],
    model: dict[str, Any],
    temps: np.ndarray,
    method: str,
    settings: dict[str, Any],
    seed: int,
    produce: Callable[[], Samples],
) -> tuple[Samples, bool]:
    """Load the set for this request from ``root``, or produce and save it.

    Returns the samples and whether they came from the cache.
    """
    key = request_key(model, temps, method, settings, seed)
    directory = Path(root) / f"{model['model']}-{model['size']}-{method}-{key}"
    if (directory / "samples.json").exists():
        return Samples.load(directory), True
    samples = produce()
    samples.save(directory)
    return samples, False
