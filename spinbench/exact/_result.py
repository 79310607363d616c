"""Containers for exact reference values."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class ExactResult:
    """Exact thermodynamics of a model at a grid of temperatures (float64).

    ``ln_z`` is the total log partition function; energy, heat capacity and magnetisation are
    per site.
    ``correlation`` has shape (temps, len(distances)); entries that are not known exactly are
    NaN, and a whole field that is unknown is None.
    """

    temps: np.ndarray
    ln_z: np.ndarray | None = None
    energy: np.ndarray | None = None
    heat_capacity: np.ndarray | None = None
    abs_magnetization: np.ndarray | None = None
    correlation: np.ndarray | None = None
    distances: np.ndarray | None = None
    source: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    def observable(self, name: str) -> np.ndarray | None:
        """The exact values of one observable (temps,) or (temps, r), or None if unknown."""
        return {
            "ln_z": self.ln_z,
            "energy": self.energy,
            "heat_capacity": self.heat_capacity,
            "abs_magnetization": self.abs_magnetization,
            "correlation": self.correlation,
        }.get(name)


@dataclass(frozen=True)
class EnergyDistribution:
    """Exact distribution of the total energy: probabilities (temps, levels) over ``levels``."""

    levels: np.ndarray
    probabilities: np.ndarray
