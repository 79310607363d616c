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
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_directory
from ._errors import DamagedSamples

FORMAT_VERSION = 1


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
        """Read a set written by :meth:`save`; :class:`DamagedSamples` names the folder and
        what is wrong if it is missing, truncated or inconsistent."""
        source = Path(directory)
        try:
            meta = json.loads((source / "samples.json").read_text(encoding="utf-8"))
            with np.load(source / "samples.npz", allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except FileNotFoundError as error:
            missing = Path(str(error.filename)).name
            raise DamagedSamples(f"{source}: {missing} is missing") from error
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            reason = f"{type(error).__name__}: {error}"
            raise DamagedSamples(f"{source}: unreadable ({reason})") from error
        problem = _layout_problem(meta, arrays)
        if problem is not None:
            raise DamagedSamples(f"{source}: {problem}")
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


def _layout_problem(meta: Any, arrays: dict[str, np.ndarray]) -> str | None:
    """What is inconsistent between a set's metadata and its arrays, or None."""
    if not isinstance(meta, dict):
        return "samples.json does not hold a JSON object"
    if meta.get("format") != FORMAT_VERSION:
        return f"sample format {meta.get('format')!r} is not {FORMAT_VERSION}"
    keys = ("model", "method", "settings", "seed", "temps", "shape")
    missing = [k for k in keys if k not in meta]
    if missing:
        return f"samples.json lacks {', '.join(missing)}"
    if "states" not in arrays or "temps" not in arrays:
        return "samples.npz lacks the states or temps array"
    states, temps = arrays["states"], arrays["temps"]
    if list(states.shape) != list(meta["shape"]) or states.ndim < 4:
        return f"states have shape {list(states.shape)}, samples.json says {meta['shape']}"
    if temps.shape != (states.shape[0],) or len(meta["temps"]) != states.shape[0]:
        return f"{temps.shape[0] if temps.ndim else 0} temperatures for {states.shape[0]} in states"
    for name, value in arrays.items():
        if name.startswith("info_") and value.shape[:1] != (states.shape[0],):
            return f"info array {name.removeprefix('info_')!r} lacks the temperature axis"
    return None


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
    *,
    stream: str = "",
    report: Callable[[str], None] | None = None,
) -> tuple[Samples, bool]:
    """Load the set for this request from ``root``, or produce and save it.

    ``stream`` names the random stream the samples are drawn from when it is not the seed
    alone (the runner derives one key per model from the seed). A damaged set (empty or
    truncated files, missing metadata) is reported through ``report`` (a warning by default),
    removed and produced again. Returns the samples and whether they came from the cache.
    """
    request = {**settings, "stream": stream} if stream else settings
    key = request_key(model, temps, method, request, seed)
    directory = Path(root) / f"{model['model']}-{model['size']}-{method}-{key}"
    if directory.exists():
        try:
            return Samples.load(directory), True
        except DamagedSamples as error:
            message = f"discarded a damaged sample cache and sampling again: {error}"
            if report is None:
                warnings.warn(message, stacklevel=2)
            else:
                report(message)
            shutil.rmtree(directory, ignore_errors=True)
    samples = produce()
    samples.save(directory)
    return samples, False
