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

    ``extra`` holds exact values of observables beyond these fields, by observable name, each
    (temps,) or (temps, r): e.g. ``{"magnetization": ...}`` for the signed <sum_i s_i / N> of a
    chain in a field. It is how a model gives exact values for any observable it measures:
    :meth:`observable` looks a name up there when it is not one of the fields above.
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
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def observable(self, name: str) -> np.ndarray | None:
        """The exact values of one observable (temps,) or (temps, r), or None if unknown:
        a field above by its name, or else ``extra[name]``."""
        fixed = {
            "ln_z": self.ln_z,
            "energy": self.energy,
            "heat_capacity": self.heat_capacity,
            "abs_magnetization": self.abs_magnetization,
            "correlation": self.correlation,
        }
        if name in fixed:
            return fixed[name]
        return self.extra.get(name)


@dataclass(frozen=True)
class EnergyDistribution:
    """Exact distribution of the total energy: probabilities (temps, levels) over ``levels``."""

    levels: np.ndarray
    probabilities: np.ndarray
