"""The model contract: what a spin model gives to samplers, generators and the runner.

A model is an immutable :class:`equinox.Module` whose fields (lattice shape, boundary condition,
coupling, and its own options such as a field ``h``) are static, so it can be passed into
jitted code. Batches are laid out ``(*batch, *shape)`` where ``batch`` is any number of
leading axes, usually ``(temperatures, chains)``.

A subclass must provide:

* ``name`` (class attribute, lowercase), ``spin_values`` (the allowed values of a discrete
  spin, e.g. ``(-1, 1)``, or ``None`` for continuous angles in [-pi, pi)) and ``dimensions``
  (1 for a chain, 2 for a square lattice), which the default :meth:`AbstractModel.from_size`
  uses to read the command line's size spelling;
* fields ``shape``, ``boundary`` and ``J``, and any *model options* as further static fields
  with defaults (validated in ``__check_init__``): grids set them (``h = 0.3`` in a
  ``[[models]]`` table), the command line too (``--model-option h=0.3``), and they enter every
  description, cache key, digest and table row;
* ``neighbours()``: a ``(n_sites, z)`` integer table of flat neighbour indices (``-1`` = none);
* ``bond_energy(a, b)``: the energy of one bond between spins ``a`` and ``b`` (elementwise);
* ``correlation(states)``: the spin-spin correlation at every distance of
  ``correlation_distances()`` (helpers for chains and tori are in :mod:`spinbench.models`).

Optionally ``site_energy(spins)``: a single-site energy (an external field) beside the bonds.

Everything else (total energy, local energy change, sublattice colouring, observables, exact
values by enumeration of small lattices) has a correct default derived from those, which a
subclass may override with a faster version; ``spinbench.testing.check_model`` checks the
overrides against the defaults.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import math
import re
from typing import Any, ClassVar, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._errors import ModelError
from .._plain import plain
from ..exact._enumerate import can_enumerate, enumerate_energy_distribution, enumerate_exact
from ..exact._result import EnergyDistribution, ExactResult


def parse_size(size: str | int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    """Parse ``"6"``, ``"10"``, ``"10x12"``, an int or a tuple into a shape of ``ndim`` axes.

    A single number means the same length along every axis.
    """
    if isinstance(size, int | np.integer):
        lengths: tuple[int, ...] = (int(size),)
    elif isinstance(size, tuple | list):
        lengths = tuple(int(s) for s in size)
    else:
        text = str(size).strip().lower()
        if not re.fullmatch(r"\d+(x\d+)*", text):
            raise ModelError(
                f"size {size!r} is not understood; give a positive integer like '6', "
                f"or lengths joined by 'x' like '10x12'"
            )
        lengths = tuple(int(part) for part in text.split("x"))
    if len(lengths) == 1:
        lengths = lengths * ndim
    if len(lengths) != ndim:
        raise ModelError(f"size {size!r} has {len(lengths)} axes; this model needs {ndim}")
    if any(length < 2 for length in lengths):
        raise ModelError(f"size {size!r} is too small: every length must be at least 2")
    return lengths


def format_size(shape: tuple[int, ...]) -> str:
    """The canonical spelling of a shape: ``"6"`` or ``"10x10"``."""
    return "x".join(str(n) for n in shape)


class AbstractModel(eqx.Module):
    """A classical spin model on a finite lattice (see the module docstring for the contract)."""

    #: Registry name, unique and lowercase.
    name: ClassVar[str]
    #: Allowed values of a discrete spin, or None for continuous angles.
    spin_values: ClassVar[tuple[int, ...] | None]
    #: Global symmetry of the energy: "flip" (s -> -s), "rotation" (theta -> theta + c),
    #: "permutation" (relabelling of discrete values, e.g. Potts) or None. A model whose
    #: options can break it (a field) makes it a property of the instance.
    symmetry: ClassVar[str | None] = None
    #: Lattice dimensions, for the default :meth:`from_size` (1: chain, 2: square lattice).
    dimensions: ClassVar[int]
    #: Boundary conditions this model accepts; the first is the default.
    boundaries: ClassVar[tuple[str, ...]] = ("periodic",)
    #: Critical temperature of the infinite system, where one is known (else None).
    critical_temperature: ClassVar[float | None] = None

    shape: eqx.AbstractVar[tuple[int, ...]]
    boundary: eqx.AbstractVar[str]
    J: eqx.AbstractVar[float]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_size(
        cls,
        size: str | int | tuple[int, ...],
        *,
        boundary: str | None = None,
        J: float = 1.0,
        **options: Any,
    ) -> Self:
        """Build a model from a size spelling (``"6"``, ``"10"``, ``"10x12"``), a boundary
        (default: the model's first), a coupling and model options; :class:`ModelError`
        names what is wrong and what is allowed."""
        boundary, J = cls._check_common(boundary, J)
        unknown = sorted(set(options) - set(cls.option_names()))
        if unknown:
            valid = ", ".join(cls.option_names()) or "(none)"
            close = difflib.get_close_matches(unknown[0], cls.option_names(), n=1)
            hint = f". Did you mean {close[0]!r}?" if close else ""
            raise ModelError(
                f"{cls.name} has no option {', '.join(map(repr, unknown))}; its options: "
                f"{valid}{hint}"
            )
        dimensions = getattr(cls, "dimensions", None)
        if not isinstance(dimensions, int):
            raise TypeError(f"{cls.__name__} must set the class attribute dimensions")
        try:
            return cls(parse_size(size, dimensions), boundary, J, **options)
        except (TypeError, ValueError) as error:
            if isinstance(error, ModelError):
                raise
            raise ModelError(f"invalid options for {cls.name}: {error}") from error

    @classmethod
    def option_names(cls) -> tuple[str, ...]:
        """The model's own options: its public fields beyond shape, boundary and J."""
        return tuple(
            f.name
            for f in dataclasses.fields(cls)
            if f.name not in ("shape", "boundary", "J") and not f.name.startswith("_")
        )

    def options(self) -> dict[str, Any]:
        """This instance's model options by name (empty for a model without any)."""
        return {name: getattr(self, name) for name in self.option_names()}

    @classmethod
    def _check_common(cls, boundary: str | None, J: float) -> tuple[str, float]:
        """Validate the boundary and coupling shared by all models."""
        boundary = cls.boundaries[0] if boundary is None else boundary
        if boundary not in cls.boundaries:
            raise ModelError(
                f"boundary {boundary!r} is not supported by {cls.name}; "
                f"choose one of: {', '.join(cls.boundaries)}"
            )
        J = float(J)
        if not math.isfinite(J) or J == 0.0:
            raise ModelError(f"coupling J={J} must be finite and non-zero")
        return boundary, J

    # ------------------------------------------------------------------ required
    @abc.abstractmethod
    def neighbours(self) -> np.ndarray:
        """Flat neighbour indices, shape ``(n_sites, z)``; ``-1`` marks a missing neighbour."""

    @abc.abstractmethod
    def bond_energy(self, a: Array, b: Array) -> Float[Array, "..."]:
        """Energy of one bond between spins ``a`` and ``b``, elementwise, as float32."""

    # ------------------------------------------------------------------ derived facts
    @property
    def n_sites(self) -> int:
        """Number of spins."""
        return math.prod(self.shape)

    @property
    def size(self) -> str:
        """The canonical size spelling, e.g. ``"10x10"``."""
        return format_size(self.shape)

    @property
    def is_discrete(self) -> bool:
        """True for spins with finitely many values (Ising, Potts)."""
        return self.spin_values is not None

    @property
    def dtype(self) -> jnp.dtype:
        """int8 for discrete spins, float32 for angles."""
        return jnp.dtype(jnp.int8) if self.is_discrete else jnp.dtype(jnp.float32)

    def describe(self) -> dict[str, object]:
        """A JSON-friendly description of this instance, options included (for provenance,
        cache keys and digests)."""
        described: dict[str, object] = {
            "model": self.name,
            "size": self.size,
            "boundary": self.boundary,
            "J": self.J,
        }
        return {**described, **self.options()}

    def options_label(self) -> str:
        """The options as a table cell: ``"h=0.3"``, several joined by commas; empty without."""
        return ",".join(f"{name}={plain(value)}" for name, value in self.options().items())

    # ------------------------------------------------------------------ states
    def random_states(self, batch_shape: tuple[int, ...] = (), *, key: PRNGKeyArray) -> Array:
        """Uniformly random configurations, shape ``(*batch_shape, *shape)``."""
        full = (*batch_shape, *self.shape)
        if self.spin_values is not None:
            values = jnp.asarray(self.spin_values, dtype=jnp.int8)
            return values[jax.random.randint(key, full, 0, len(self.spin_values))]
        return jax.random.uniform(key, full, jnp.float32, -jnp.pi, jnp.pi)

    def propose(self, current: Array, *, key: PRNGKeyArray, width: float | None = None) -> Array:
        """A proposed new value for each spin in ``current`` (any shape), symmetric in q(a->b).

        Discrete spins: a uniformly random *other* value (a flip for two values). Angles: a new
        uniform angle, or with ``width`` a move ``theta + U(-width, width)`` wrapped to [-pi, pi).
        """
        if self.spin_values is not None:
            q = len(self.spin_values)
            values = jnp.asarray(self.spin_values, dtype=jnp.int8)
            if q == 2:
                return jnp.where(current == values[0], values[1], values[0])
            index = jnp.argmax(current[..., None] == values, axis=-1)
            shift = jax.random.randint(key, current.shape, 1, q)
            return values[(index + shift) % q]
        if width is None:
            return jax.random.uniform(key, current.shape, jnp.float32, -jnp.pi, jnp.pi)
        step = jax.random.uniform(key, current.shape, jnp.float32, -width, width)
        return wrap_angle(current + step)

    # ------------------------------------------------------------------ energies
    def _flat(self, states: Array) -> Array:
        return states.reshape(*states.shape[: states.ndim - len(self.shape)], self.n_sites)

    def _neighbour_values(self, flat: Array) -> tuple[Array, Array]:
        """Neighbour spins ``(*batch, n_sites, z)`` and the validity mask ``(n_sites, z)``."""
        table = self.neighbours()
        mask = jnp.asarray(table >= 0)
        index = jnp.asarray(np.where(table >= 0, table, 0))
        return flat[..., index], mask

    def site_energy(self, spins: Array) -> Float[Array, "..."] | None:
        """The single-site energy of each spin, elementwise, as float32 (an external field),
        or None when the model has none (the default): then only bonds count."""
        return None

    def energy(self, states: Array) -> Float[Array, "*batch"]:
        """Total energy of each configuration in a batch ``(*batch, *shape)``: half the sum of
        ``bond_energy`` over the neighbour table, plus ``site_energy`` of every site."""
        flat = self._flat(states)
        neighbours, mask = self._neighbour_values(flat)
        bonds = jnp.where(mask, self.bond_energy(flat[..., None], neighbours), 0.0)
        total = 0.5 * jnp.sum(bonds, axis=(-2, -1))
        site = self.site_energy(flat)
        return total if site is None else total + jnp.sum(site, axis=-1)

    def delta_energy(self, states: Array, proposed: Array) -> Float[Array, "*batch *shape"]:
        """Energy change at every site if that site alone took its ``proposed`` value.

        Computed from neighbours only; ``states`` and ``proposed`` are ``(*batch, *shape)``.
        """
        flat, new = self._flat(states), self._flat(proposed)
        neighbours, mask = self._neighbour_values(flat)
        change = self.bond_energy(new[..., None], neighbours) - self.bond_energy(
            flat[..., None], neighbours
        )
        delta = jnp.sum(jnp.where(mask, change, 0.0), axis=-1)
        new_site, old_site = self.site_energy(new), self.site_energy(flat)
        if new_site is not None and old_site is not None:
            delta = delta + (new_site - old_site)
        return delta.reshape(states.shape)

    def site_delta_energy(
        self, state: Array, site: Int[Array, ""], proposed: Array
    ) -> Float[Array, ""]:
        """Energy change of one configuration ``shape`` if flat ``site`` took value ``proposed``."""
        flat = state.reshape(self.n_sites)
        table = jnp.asarray(self.neighbours())
        row = table[site]
        neighbours = flat[jnp.where(row >= 0, row, 0)]
        change = self.bond_energy(proposed, neighbours) - self.bond_energy(flat[site], neighbours)
        delta = jnp.sum(jnp.where(row >= 0, change, 0.0))
        new_site, old_site = self.site_energy(proposed), self.site_energy(flat[site])
        if new_site is not None and old_site is not None:
            delta = delta + (new_site - old_site)
        return delta

    def colouring(self) -> np.ndarray:
        """Sublattice labels ``shape`` (ints 0..k-1): sites of one colour never interact.

        The default is a greedy colouring of the neighbour graph; models with a known
        bipartite structure override it with the checkerboard.
        """
        table = self.neighbours()
        colours = np.full(self.n_sites, -1, dtype=np.int32)
        for site in range(self.n_sites):
            taken = {int(colours[j]) for j in table[site] if j >= 0 and j != site}
            colours[site] = next(c for c in range(len(taken) + 1) if c not in taken)
        return colours.reshape(self.shape)

    # ------------------------------------------------------------------ observables
    def spin_vectors(self, states: Array) -> Float[Array, "*batch n_sites d"]:
        """Each spin as a vector, ``(*batch, n_sites, d)``: Ising s -> (s,), angle -> (cos, sin)."""
        flat = self._flat(states)
        if self.spin_values is not None:
            return flat.astype(jnp.float32)[..., None]
        return jnp.stack([jnp.cos(flat), jnp.sin(flat)], axis=-1)

    def correlation_distances(self) -> np.ndarray:
        """Distances r at which :meth:`correlation` is measured (1 .. largest meaningful)."""
        longest = max(self.shape)
        last = longest - 1 if self.boundary == "free" else longest // 2
        return np.arange(1, last + 1)

    @abc.abstractmethod
    def correlation(self, states: Array) -> Float[Array, "*batch r"]:
        """Spin-spin correlation <s_i . s_{i+r}> of each configuration, averaged over pairs."""

    def observables(self, states: Array) -> dict[str, Array]:
        """Per-configuration observables of a batch: energy and |magnetisation| per site,
        and the correlation at every distance of :meth:`correlation_distances`."""
        vectors = self.spin_vectors(states)
        magnetization = jnp.linalg.norm(jnp.mean(vectors, axis=-2), axis=-1)
        return {
            "energy": self.energy(states) / self.n_sites,
            "abs_magnetization": magnetization,
            "correlation": self.correlation(states),
        }

    # ------------------------------------------------------------------ exact references
    def exact(self, temps: np.ndarray) -> ExactResult | None:
        """Exact per-site thermodynamics at ``temps``, or None where none is known.

        Exact values of observables beyond the fixed fields of :class:`ExactResult` (the
        energy, heat capacity, |m| and correlations) go in its ``extra`` mapping under the
        observable's name. The default enumerates every configuration of small discrete
        models, which gives every observable of :meth:`observables`.
        """
        if can_enumerate(self):
            return enumerate_exact(self, temps)
        return None

    def exact_energy_distribution(self, temps: np.ndarray) -> EnergyDistribution | None:
        """Exact distribution of the total energy at ``temps``, or None where none is known."""
        if can_enumerate(self):
            return enumerate_energy_distribution(self, temps)
        return None


def wrap_angle(theta: Array) -> Array:
    """Map angles to [-pi, pi) (guarding the float32 rounding of the upper end)."""
    wrapped = jnp.mod(theta + jnp.pi, 2 * jnp.pi) - jnp.pi
    return jnp.where(wrapped >= jnp.pi, -jnp.pi, wrapped).astype(theta.dtype)
