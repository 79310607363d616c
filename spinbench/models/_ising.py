"""Ising models: spins are int8 ±1, H = -J Σ_<ij> s_i s_j - h Σ_i s_i.

The uniform field ``h`` is a model option (default 0). With ``h = 0`` the energy is symmetric
under s -> -s; a field breaks that symmetry, and the signed magnetisation joins the
observables. Exact values: the chain has the transfer-matrix solution at any h
(:func:`~spinbench.exact.ising1d_exact`); the torus has Kaufman's solution at h = 0, and small
tori are enumerated at any h; larger tori in a field have no exact values (the Monte Carlo
reference stands in). The torus's exact energy distribution at h = 0 comes from its exact
density of states (Beale's method) up to 64x64.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._errors import FrustratedTorusError
from .._plain import plain
from ..exact._dos import ISING2D_DOS_MAX_SITES, ising2d_energy_distribution
from ..exact._enumerate import can_enumerate, enumerate_exact
from ..exact._ising1d import ising1d_energy_distribution, ising1d_exact
from ..exact._ising2d import ising2d_infinite, ising2d_torus
from ..exact._result import EnergyDistribution, ExactResult
from ._base import AbstractModel
from ._lattice import (
    chain_correlation,
    chain_neighbours,
    checkerboard_colouring,
    rolled_neighbours,
    torus_correlation,
    torus_neighbours,
)

__all__ = ["Ising1D", "Ising2D"]


def _as_field(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class _Ising(AbstractModel):
    """Shared Ising bond and field terms."""

    spin_values: ClassVar[tuple[int, ...] | None] = (-1, 1)

    h: eqx.AbstractVar[float]

    def __check_init__(self) -> None:
        if not isinstance(self.h, float) or not math.isfinite(self.h):
            raise ValueError(f"the field h must be a finite number, got {plain(self.h)!r}")

    @property
    def symmetry(self) -> str | None:  # type: ignore[override]
        """``"flip"`` without a field; a field breaks it."""
        return "flip" if self.h == 0 else None

    def bond_energy(self, a: Array, b: Array) -> Float[Array, "..."]:
        return -self.J * (a.astype(jnp.float32) * b.astype(jnp.float32))

    def site_energy(self, spins: Array) -> Float[Array, "..."] | None:
        return None if self.h == 0 else -self.h * spins.astype(jnp.float32)

    def observables(self, states: Array) -> dict[str, Array]:
        """The default observables, and in a field the signed magnetisation per site."""
        values = super().observables(states)
        if self.h != 0:
            values["magnetization"] = jnp.mean(self._flat(states).astype(jnp.float32), axis=-1)
        return values


class Ising1D(_Ising):
    """Nearest-neighbour Ising chain, free (default) or periodic ends, in a field h (default 0)."""

    name: ClassVar[str] = "ising1d"
    dimensions: ClassVar[int] = 1
    boundaries: ClassVar[tuple[str, ...]] = ("free", "periodic")

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="free")
    J: float = eqx.field(static=True, default=1.0)
    h: float = eqx.field(static=True, default=0.0, converter=_as_field)

    def neighbours(self) -> np.ndarray:
        return chain_neighbours(self.n_sites, self.boundary)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        return chain_correlation(
            self.spin_vectors(states), self.correlation_distances(), self.boundary
        )

    def exact(self, temps: np.ndarray) -> ExactResult:
        result = ising1d_exact(self.n_sites, temps, boundary=self.boundary, J=self.J, h=self.h)
        if self.h == 0 and can_enumerate(self):  # no closed form for |m|: enumeration has it
            counted = enumerate_exact(self, temps)
            result = dataclasses.replace(result, abs_magnetization=counted.abs_magnetization)
        return result

    def exact_energy_distribution(self, temps: np.ndarray) -> EnergyDistribution:
        return ising1d_energy_distribution(
            self.n_sites, temps, boundary=self.boundary, J=self.J, h=self.h
        )


class Ising2D(_Ising):
    """Nearest-neighbour Ising model on an Lx x Ly torus, in a uniform field h (default 0)."""

    name: ClassVar[str] = "ising2d"
    dimensions: ClassVar[int] = 2
    boundaries: ClassVar[tuple[str, ...]] = ("periodic",)
    critical_temperature: ClassVar[float | None] = 2.0 / math.log(1.0 + math.sqrt(2.0))

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="periodic")
    J: float = eqx.field(static=True, default=1.0)
    h: float = eqx.field(static=True, default=0.0, converter=_as_field)

    def neighbours(self) -> np.ndarray:
        return torus_neighbours((self.shape[0], self.shape[1]))

    # Rolls instead of gathers: the fast path for checkerboard updates.
    def _neighbour_sum(self, states: Array) -> Array:
        up, down, left, right = rolled_neighbours(states.astype(jnp.float32))
        return up + down + left + right

    def energy(self, states: Array) -> Float[Array, "*batch"]:
        s = states.astype(jnp.float32)
        bonds = s * (jnp.roll(s, -1, axis=-2) + jnp.roll(s, -1, axis=-1))
        energy = -self.J * jnp.sum(bonds, axis=(-2, -1))
        return energy if self.h == 0 else energy - self.h * jnp.sum(s, axis=(-2, -1))

    def delta_energy(self, states: Array, proposed: Array) -> Float[Array, "*batch lx ly"]:
        change = proposed.astype(jnp.float32) - states.astype(jnp.float32)
        delta = -self.J * change * self._neighbour_sum(states)
        return delta if self.h == 0 else delta - self.h * change

    def colouring(self) -> np.ndarray:
        checkerboard = checkerboard_colouring(self.shape)
        return super().colouring() if checkerboard is None else checkerboard

    def correlation_distances(self) -> np.ndarray:
        return np.arange(1, min(self.shape) // 2 + 1)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        vectors = self.spin_vectors(states).reshape(*states.shape, 1)
        return torus_correlation(vectors, self.correlation_distances())

    def exact(self, temps: np.ndarray) -> ExactResult | None:
        """Kaufman's torus at h = 0 (with |m| and correlations by enumeration where small);
        in a field, or on a frustrated torus, enumeration where small, else None."""
        if self.h != 0:
            return enumerate_exact(self, temps) if can_enumerate(self) else None
        lx, ly = self.shape
        try:
            result = ising2d_torus(lx, ly, temps, J=self.J)
        except FrustratedTorusError:  # no closed form; a temperature out of range propagates
            return enumerate_exact(self, temps) if can_enumerate(self) else None
        if can_enumerate(self):  # magnetisation and correlations by enumeration
            counted = enumerate_exact(self, temps)
            result = dataclasses.replace(
                result,
                abs_magnetization=counted.abs_magnetization,
                correlation=counted.correlation,
                distances=counted.distances,
            )
        return result

    def exact_energy_distribution(self, temps: np.ndarray) -> EnergyDistribution | None:
        """Exact energy distribution: from the exact density of states (Beale) on every torus
        up to 64x64 at h = 0 that is not frustrated; otherwise enumeration where small, else
        None."""
        lx, ly = self.shape
        frustrated = self.J < 0 and (lx % 2 or ly % 2)
        if self.h == 0 and not frustrated and self.n_sites <= ISING2D_DOS_MAX_SITES:
            return ising2d_energy_distribution(lx, ly, temps, J=self.J)
        return super().exact_energy_distribution(temps)

    def exact_infinite(self, temps: np.ndarray) -> ExactResult:
        """Onsager's infinite-lattice values (context for plots; not the finite reference)."""
        return ising2d_infinite(temps, J=self.J)
