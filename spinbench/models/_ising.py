"""Ising models: spins are int8 +-1, H = -J sum_<ij> s_i s_j."""

from __future__ import annotations

import math
from typing import ClassVar, Self

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ..exact._result import EnergyDistribution, ExactResult
from ._base import AbstractModel, parse_size
from ._lattice import chain_correlation, chain_neighbours, torus_correlation, torus_neighbours


class _IsingBond(AbstractModel):
    """Shared Ising bond energy."""

    spin_values: ClassVar[tuple[int, ...] | None] = (-1, 1)
    symmetry: ClassVar[str | None] = "flip"

    def bond_energy(self, a: Array, b: Array) -> Float[Array, "..."]:
        return -self.J * (a.astype(jnp.float32) * b.astype(jnp.float32))


class Ising1D(_IsingBond):
    """Nearest-neighbour Ising chain of N sites with free (default) or periodic ends."""

    name: ClassVar[str] = "ising1d"
    boundaries: ClassVar[tuple[str, ...]] = ("free", "periodic")

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="free")
    J: float = eqx.field(static=True, default=1.0)

    @classmethod
    def from_size(
        cls, size: str | int | tuple[int, ...], *, boundary: str | None = None, J: float = 1.0
    ) -> Self:
        boundary, J = cls._check_common(boundary, J)
        return cls(parse_size(size, 1), boundary, J)

    def neighbours(self) -> np.ndarray:
        return chain_neighbours(self.n_sites, self.boundary)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        return chain_correlation(
            self.spin_vectors(states), self.correlation_distances(), self.boundary
        )

    def exact(self, temps: np.ndarray) -> ExactResult:
        from ..exact._ising1d import ising1d_exact

        result = ising1d_exact(self.n_sites, temps, boundary=self.boundary, J=self.J)
        from ..exact._enumerate import can_enumerate, enumerate_exact

        if can_enumerate(self):  # |m| has no closed form here; enumeration supplies it
            counted = enumerate_exact(self, temps)
            result = _with_magnetization(result, counted.abs_magnetization)
        return result

    def exact_energy_distribution(self, temps: np.ndarray) -> EnergyDistribution:
        from ..exact._ising1d import ising1d_energy_distribution

        return ising1d_energy_distribution(self.n_sites, temps, boundary=self.boundary, J=self.J)


class Ising2D(_IsingBond):
    """Nearest-neighbour Ising model on an Lx x Ly torus."""

    name: ClassVar[str] = "ising2d"
    boundaries: ClassVar[tuple[str, ...]] = ("periodic",)
    critical_temperature: ClassVar[float | None] = 2.0 / math.log(1.0 + math.sqrt(2.0))

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="periodic")
    J: float = eqx.field(static=True, default=1.0)

    @classmethod
    def from_size(
        cls, size: str | int | tuple[int, ...], *, boundary: str | None = None, J: float = 1.0
    ) -> Self:
        boundary, J = cls._check_common(boundary, J)
        return cls(parse_size(size, 2), boundary, J)

    def neighbours(self) -> np.ndarray:
        return torus_neighbours((self.shape[0], self.shape[1]))

    # Rolls instead of gathers: the fast path for checkerboard updates.
    def _neighbour_sum(self, states: Array) -> Array:
        s = states.astype(jnp.float32)
        return (
            jnp.roll(s, 1, axis=-2)
            + jnp.roll(s, -1, axis=-2)
            + jnp.roll(s, 1, axis=-1)
            + jnp.roll(s, -1, axis=-1)
        )

    def energy(self, states: Array) -> Float[Array, "*batch"]:
        s = states.astype(jnp.float32)
        bonds = s * (jnp.roll(s, -1, axis=-2) + jnp.roll(s, -1, axis=-1))
        return -self.J * jnp.sum(bonds, axis=(-2, -1))

    def delta_energy(self, states: Array, proposed: Array) -> Float[Array, "*batch lx ly"]:
        change = proposed.astype(jnp.float32) - states.astype(jnp.float32)
        return -self.J * change * self._neighbour_sum(states)

    def colouring(self) -> np.ndarray:
        lx, ly = self.shape
        if lx % 2 == 0 and ly % 2 == 0:
            x, y = np.indices((lx, ly))
            return ((x + y) % 2).astype(np.int32)
        return super().colouring()

    def correlation_distances(self) -> np.ndarray:
        return np.arange(1, min(self.shape) // 2 + 1)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        vectors = self.spin_vectors(states).reshape(*states.shape, 1)
        return torus_correlation(vectors, self.correlation_distances())

    def exact(self, temps: np.ndarray) -> ExactResult | None:
        from ..exact._enumerate import can_enumerate, enumerate_exact
        from ..exact._ising2d import FrustratedTorusError, ising2d_torus

        lx, ly = self.shape
        try:
            result = ising2d_torus(lx, ly, temps, J=self.J)
        except FrustratedTorusError:  # no closed form; a temperature out of range propagates
            return enumerate_exact(self, temps) if can_enumerate(self) else None
        if can_enumerate(self):  # magnetisation and correlations by enumeration
            counted = enumerate_exact(self, temps)
            result = _with_magnetization(result, counted.abs_magnetization)
            result = ExactResult(
                **{
                    **result.__dict__,
                    "correlation": counted.correlation,
                    "distances": counted.distances,
                }
            )
        return result

    def exact_infinite(self, temps: np.ndarray) -> ExactResult:
        """Onsager's infinite-lattice values (context for plots; not the finite reference)."""
        from ..exact._ising2d import ising2d_infinite

        return ising2d_infinite(temps, J=self.J)


def _with_magnetization(result: ExactResult, magnetization: np.ndarray | None) -> ExactResult:
    return ExactResult(**{**result.__dict__, "abs_magnetization": magnetization})
