"""Exact references: closed forms for the built-in models and enumeration for small discrete ones.

Every function takes temperatures (validated by :func:`spinbench.temperatures.check_temperatures`)
and returns float64 values per site (``ln_z`` is the total lnZ of the finite system, or lnZ per
site for the infinite lattice) in an :class:`ExactResult`. A temperature colder than a solver
resolves is an :class:`~spinbench.ExactSolutionError` naming its limit on |J|/T, not a NaN.
The 2D torus also has its exact density of states (Beale's method, exact integers) and hence
its exact energy distribution at any temperature, up to 64x64.
"""

from ._dos import (
    ISING2D_DOS_MAX_SITES,
    DensityOfStates,
    ising2d_density_of_states,
    ising2d_energy_distribution,
)
from ._enumerate import (
    ENUMERATION_MAX_STATES,
    boltzmann_log_probabilities,
    can_enumerate,
    enumerate_energy_distribution,
    enumerate_exact,
    enumerate_states,
    has_at_most_states,
    state_index,
)
from ._ising1d import ising1d_energy_distribution, ising1d_exact
from ._ising2d import ISING2D_TC, FrustratedTorusError, ising2d_infinite, ising2d_torus
from ._result import EnergyDistribution, ExactResult
from ._xy1d import xy1d_exact

__all__ = [
    "ENUMERATION_MAX_STATES",
    "ISING2D_DOS_MAX_SITES",
    "ISING2D_TC",
    "DensityOfStates",
    "EnergyDistribution",
    "ExactResult",
    "FrustratedTorusError",
    "boltzmann_log_probabilities",
    "can_enumerate",
    "enumerate_energy_distribution",
    "enumerate_exact",
    "enumerate_states",
    "has_at_most_states",
    "ising1d_energy_distribution",
    "ising1d_exact",
    "ising2d_density_of_states",
    "ising2d_energy_distribution",
    "ising2d_infinite",
    "ising2d_torus",
    "state_index",
    "xy1d_exact",
]
