"""The 2D XY model: planar rotors on an Lx x Ly torus, H = -J sum_<ij> cos(theta_i - theta_j).

There is no exact solution at finite size, so ``exact`` is None and spinbench compares every
method with its Monte Carlo reference. The infinite lattice has a Berezinskii-Kosterlitz-Thouless
transition at T_BKT = 0.8929(1) J (Hasenbusch, J. Phys. A 38, 5869 (2005)); it has no ordered
phase (Mermin-Wagner), so ``critical_temperature`` marks where correlations turn from
exponential to power-law decay, a guide for temperature grids rather than a true T_c.

The neighbour table and ``bond_energy`` alone would do (spinbench derives the rest); the total
and local energies are overridden with periodic shifts, which are faster on accelerators, and
``spinbench.testing.check_model`` verifies the overrides against the derived defaults.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from spinbench import AbstractModel, EnergyDistribution, ExactResult
from spinbench.models import (
    checkerboard_colouring,
    rolled_neighbours,
    torus_correlation,
    torus_neighbours,
)

#: T_BKT of the infinite 2D XY model in units of J (Hasenbusch 2005).
T_BKT = 0.8929


class XY2D(AbstractModel):
    """Planar rotors (angles) on an Lx x Ly torus; BKT transition near T = 0.893 J."""

    name: ClassVar[str] = "xy2d"
    dimensions: ClassVar[int] = 2
    spin_values: ClassVar[tuple[int, ...] | None] = None
    symmetry: ClassVar[str | None] = "rotation"
    boundaries: ClassVar[tuple[str, ...]] = ("periodic",)
    critical_temperature: ClassVar[float | None] = T_BKT

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="periodic")
    J: float = eqx.field(static=True, default=1.0)

    def neighbours(self) -> np.ndarray:
        return torus_neighbours(self.shape)

    def bond_energy(self, a: Array, b: Array) -> Float[Array, ...]:
        return -self.J * jnp.cos(a - b)

    # Faster equivalents of the defaults, by periodic shifts instead of gathers.
    def energy(self, states: Array) -> Float[Array, "*batch"]:
        right = jnp.cos(states - jnp.roll(states, -1, axis=-1))
        down = jnp.cos(states - jnp.roll(states, -1, axis=-2))
        return -self.J * jnp.sum(right + down, axis=(-2, -1))

    def delta_energy(self, states: Array, proposed: Array) -> Float[Array, "*batch lx ly"]:
        change = jnp.zeros(states.shape, jnp.float32)
        for neighbour in rolled_neighbours(states):
            change += jnp.cos(proposed - neighbour) - jnp.cos(states - neighbour)
        return -self.J * change

    def colouring(self) -> np.ndarray:
        board = checkerboard_colouring(self.shape)
        return board if board is not None else super().colouring()

    def correlation_distances(self) -> np.ndarray:
        return np.arange(1, min(self.shape) // 2 + 1)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        """<cos(theta_x - theta_{x+r})> along both axes."""
        vectors = jnp.stack([jnp.cos(states), jnp.sin(states)], axis=-1)
        return torus_correlation(vectors, self.correlation_distances())

    def exact(self, temps: np.ndarray) -> ExactResult | None:
        """None: no exact solution is known (tables compare with the Monte Carlo reference)."""
        return None

    def exact_energy_distribution(self, temps: np.ndarray) -> EnergyDistribution | None:
        """None: no exact energy distribution is known."""
        return None
