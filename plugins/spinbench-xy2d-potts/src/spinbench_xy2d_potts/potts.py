"""The q-state Potts model on an Lx x Ly torus: spins 0..q-1, H = -J sum_<ij> delta(s_i, s_j).

**Choosing q.** q fixes the spin values, which are a class attribute of a spinbench model
(the conformance kit and the generators read them from the class), so each q is its own
registered model rather than a model option: ``potts3`` and ``potts4`` (the continuous
transitions; q > 4 is first order). Another q is a three-line subclass of
:class:`AbstractPotts` (see the README).

**Exact facts.** The infinite square lattice orders at T_c = J / ln(1 + sqrt(q)) (Baxter), where
the energy per site is -J (1 + 1/sqrt(q)). For small tori (q**n_sites up to about 2**24
configurations, e.g. 3x3 or 4x3 for q = 3) spinbench's base class enumerates every
configuration and gives exact finite-size references; larger lattices compare with the Monte
Carlo reference.

**Order parameter.** Spin ``a`` is the unit vector ``e_a`` pointing to the a-th vertex of a
regular simplex, ``e_a . e_b = (q delta_ab - 1) / (q - 1)``; ``abs_magnetization`` is the length
of the mean vector, ``sqrt((q sum_a n_a**2 - 1) / (q - 1))`` with n_a the fraction of spins in
state a (1 when ordered, about 0 when disordered), and ``correlation`` is
``<e_{s_x} . e_{s_{x+r}}> = (q P(s_x = s_{x+r}) - 1) / (q - 1)``. Both are invariant under
permutations of the q states (``symmetry = "permutation"``).
"""

from __future__ import annotations

import math
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float
from spinbench import AbstractModel
from spinbench.models import checkerboard_colouring, torus_correlation, torus_neighbours


def potts_critical_temperature(q: int, J: float = 1.0) -> float:
    """T_c = J / ln(1 + sqrt(q)) of the infinite square-lattice Potts model (ferromagnet)."""
    return J / math.log1p(math.sqrt(q))


class AbstractPotts(AbstractModel):
    """The q-state Potts model on a torus. A subclass per q sets the class attributes ``name``,
    ``q``, ``spin_values = tuple(range(q))`` and ``critical_temperature``; the fields and
    everything else are shared."""

    q: ClassVar[int]
    dimensions: ClassVar[int] = 2
    symmetry: ClassVar[str | None] = "permutation"
    boundaries: ClassVar[tuple[str, ...]] = ("periodic",)

    shape: tuple[int, ...] = eqx.field(static=True)
    boundary: str = eqx.field(static=True, default="periodic")
    J: float = eqx.field(static=True, default=1.0)

    def neighbours(self) -> np.ndarray:
        return torus_neighbours(self.shape)

    def bond_energy(self, a: Array, b: Array) -> Float[Array, ...]:
        return -self.J * (a == b).astype(jnp.float32)

    def colouring(self) -> np.ndarray:
        board = checkerboard_colouring(self.shape)
        return board if board is not None else super().colouring()

    def spin_vectors(self, states: Array) -> Float[Array, "*batch n_sites q"]:
        """Simplex vectors ``sqrt(q/(q-1)) (onehot(s) - 1/q)``: unit length, in R^q."""
        flat = states.reshape(*states.shape[: states.ndim - 2], self.n_sites)
        onehot = (flat[..., None] == jnp.arange(self.q, dtype=flat.dtype)).astype(jnp.float32)
        return math.sqrt(self.q / (self.q - 1)) * (onehot - 1.0 / self.q)

    def correlation_distances(self) -> np.ndarray:
        return np.arange(1, min(self.shape) // 2 + 1)

    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        vectors = self.spin_vectors(states).reshape(*states.shape, self.q)
        return torus_correlation(vectors, self.correlation_distances())


class Potts3(AbstractPotts):
    """Three-state Potts model on a torus; T_c = 1/ln(1 + sqrt 3) = 0.995 J."""

    name: ClassVar[str] = "potts3"
    q: ClassVar[int] = 3
    spin_values: ClassVar[tuple[int, ...] | None] = (0, 1, 2)
    critical_temperature: ClassVar[float | None] = potts_critical_temperature(3)


class Potts4(AbstractPotts):
    """Four-state Potts model on a torus; T_c = 1/ln 3 = 0.910 J."""

    name: ClassVar[str] = "potts4"
    q: ClassVar[int] = 4
    spin_values: ClassVar[tuple[int, ...] | None] = (0, 1, 2, 3)
    critical_temperature: ClassVar[float | None] = potts_critical_temperature(4)
