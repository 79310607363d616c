"""Exact references: closed forms for the built-in models and enumeration for small discrete ones.

Every function takes temperatures (validated by :func:`spinbench.temperatures.check_temperatures`)
and returns float64 values per site (``ln_z`` is the total lnZ of the finite system, or lnZ per
site for the infinite lattice) in an :class:`ExactResult`. A temperature colder than a solver
resolves is a ValueError naming its limit on |J|/T, not a NaN.
"""

from .enumerate import (
    boltzmann_log_probabilities,
    can_enumerate,
    enumerate_energy_distribution,
    enumerate_exact,
    enumerate_states,
    state_index,
)
from .ising1d import ising1d_energy_distribution, ising1d_exact
from .ising2d import ISING2D_TC, FrustratedTorusError, ising2d_infinite, ising2d_torus
from .result import EnergyDistribution, ExactResult
from .xy1d import xy1d_exact

__all__ = [
    "ISING2D_TC",
    "EnergyDistribution",
    "ExactResult",
    "FrustratedTorusError",
    "boltzmann_log_probabilities",
    "can_enumerate",
    "enumerate_energy_distribution",
    "enumerate_exact",
    "enumerate_states",
    "ising1d_energy_distribution",
    "ising1d_exact",
    "ising2d_infinite",
    "ising2d_torus",
    "state_index",
    "xy1d_exact",
]
