"""Memory the machine has and memory a job will need: refuse what cannot fit before allocating.

Estimates are of the arrays that dominate a job: configurations kept on the host, the chains'
state on the device, and the per-configuration observables of the analysis. They are lower
bounds within a small factor, enough to refuse a 100000x100000 lattice with a clear message
instead of an allocation traceback, never a promise that a job that passes will fit.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import ResourceError

__all__ = [
    "MEMORY_SHARE",
    "ResourceError",
    "available_memory",
    "configuration_memory",
    "format_bytes",
    "generator_memory",
    "memory_problem",
    "sampler_memory",
]

#: The share of the available memory a job may be estimated to need.
MEMORY_SHARE = 0.9


def available_memory() -> int | None:
    """Bytes of memory available to a new job (``MemAvailable`` on Linux), or None if unknown."""
    meminfo = Path("/proc/meminfo")
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(count: float) -> str:
    """``"1.5 GiB"``, ``"90.9 TiB"``: a byte count for people."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")
    exponent = 0 if count < 1024 else min(len(units) - 1, int(math.log(count, 1024)))
    return f"{count / 1024**exponent:.1f} {units[exponent]}"


def configuration_memory(model: Any, count: float) -> float:
    """Bytes of ``count`` configurations of ``model`` plus their float64 observables."""
    itemsize = np.dtype(model.dtype).itemsize
    observables = 3 + max(model.shape)  # energy, |m|, heat-capacity inputs, correlations
    return count * (model.n_sites * itemsize + 8.0 * observables)


def sampler_memory(sampler: Any, model: Any, n_temps: int) -> float | None:
    """Estimated bytes of a chain sampler's run (None when it does not say its run length).

    Kept configurations ``temps x chains x samples``, and the chains' state with a few
    float32 temporaries per site on the device.
    """
    chains, n_samples = getattr(sampler, "chains", None), getattr(sampler, "n_samples", None)
    if not isinstance(chains, int) or not isinstance(n_samples, int):
        return None
    kept = configuration_memory(model, float(n_temps) * chains * n_samples)
    state = float(n_temps) * chains * model.n_sites * 16.0
    return kept + state


def generator_memory(model: Any, n_temps: int, n_training: int, n_generated: int) -> float:
    """Estimated bytes of a generator cell: float32 training features (two channels at most),
    the generated configurations and their observables."""
    features = float(n_temps) * n_training * model.n_sites * 2 * 4.0
    return features + configuration_memory(model, float(n_temps) * n_generated)


def memory_problem(estimate: float | None, what: str) -> str | None:
    """Why a job of ``estimate`` bytes does not fit here (None if it fits or is unknown)."""
    available = available_memory()
    if estimate is None or available is None or estimate <= MEMORY_SHARE * available:
        return None
    return (
        f"{what} would need about {format_bytes(estimate)} of memory, more than the "
        f"{format_bytes(available)} available here"
    )
