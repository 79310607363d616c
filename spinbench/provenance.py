"""Provenance: what produced a result (versions, device, seed, settings)."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
from collections.abc import Iterable
from typing import Any

from ._version import __version__


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def device_description() -> dict[str, str]:
    """The default JAX device, e.g. ``{"platform": "gpu", "device": "NVIDIA H100 80GB HBM3"}``."""
    import jax

    device = jax.devices()[0]
    return {"platform": device.platform, "device": getattr(device, "device_kind", str(device))}


def provenance(
    *,
    seed: int | None = None,
    settings: dict[str, Any] | None = None,
    packages: Iterable[str] = (),
) -> dict[str, Any]:
    """A JSON-friendly record of versions, device, seed and settings; ``packages`` names
    further distributions whose versions matter (a plugin's own)."""
    return {
        **{package: _version(package) for package in packages},
        "spinbench": __version__,
        "jax": _version("jax"),
        "jaxlib": _version("jaxlib"),
        "equinox": _version("equinox"),
        "numpy": _version("numpy"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        **device_description(),
        "seed": seed,
        "settings": settings or {},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
