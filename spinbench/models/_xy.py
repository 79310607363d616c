"""XY models: spins are float32 angles in [-pi, pi), H = -J sum_<ij> cos(theta_i - theta_j)."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..exact._result import ExactResult
from ..exact._xy1d import xy1d_exact
from ._base import AbstractModel
from ._lattice import chain_correlation, chain_neighbours


class XY1D(AbstractModel):
    """Nearest-neighbour XY chain of N planar rotors with free (default) or periodic ends."""

    name: ClassVar[str] = "xy1d"
    spin_values: ClassVar[tuple[int, ...] | None] = None
    symmetry: ClassVar[str | None] = "rotation"
    dimensions: ClassVar[int] = 1
    boundaries: ClassVar[tuple[str, ...]] = ("free", "periodic")

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="free")
    J: float = eqx.field(static=True, default=1.0)

    def neighbours(self) -> np.ndarray:
        return chain_neighbours(self.n_sites, self.boundary)

    def bond_energy(self, a: Array, b: Array) -> Float[Array, "..."]:
        return -self.J * jnp.cos(a - b)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        return chain_correlation(
            self.spin_vectors(states), self.correlation_distances(), self.boundary
        )

    def exact(self, temps: np.ndarray) -> ExactResult:
        return xy1d_exact(self.n_sites, temps, boundary=self.boundary, J=self.J)
