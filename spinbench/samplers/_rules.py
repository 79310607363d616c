"""Acceptance rules of single-spin Monte Carlo: what :class:`~spinbench.samplers.Metropolis`
composes with its proposals.

A rule is a small immutable value with a registry ``name``. Given the energy change ``ΔE`` of a
proposed move and the temperature ``T``, it gives the log of the acceptance probability; a
move is accepted when ``log u`` (``u`` uniform in (0, 1]) is below it. Any rule whose
acceptance ``a(ΔE)`` satisfies ``a(ΔE) / a(-ΔE) = exp(-ΔE/T)`` keeps the Boltzmann
distribution with a symmetric proposal:

* :class:`MetropolisRule`: ``min(1, exp(-ΔE/T))``, the paper's rule;
* :class:`GlauberRule`: ``1 / (1 + exp(ΔE/T))`` (Glauber 1963; Barker 1965), which for a
  two-valued spin is the heat-bath update: the new spin drawn from its conditional
  distribution given its neighbours.

A rule defined anywhere (a test, a plugin) is known by its ``name`` once its class exists, so
``Metropolis(rule="my-rule")`` and grids can name it; names are unique.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import equinox as eqx
import jax
from jaxtyping import Array, Float

__all__ = ["RULES", "AbstractAcceptanceRule", "GlauberRule", "MetropolisRule", "as_rule"]

#: Every rule class by its name.
RULES: dict[str, type[AbstractAcceptanceRule]] = {}


class AbstractAcceptanceRule(eqx.Module):
    """The log acceptance probability of a move, from its energy change and the temperature."""

    name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if isinstance(name, str):
            known = RULES.get(name)
            if known is not None and known.__qualname__ != cls.__qualname__:
                raise TypeError(f"acceptance rule name {name!r} is taken by {known.__qualname__}")
            RULES[name] = cls

    @abc.abstractmethod
    def log_acceptance(
        self, delta_e: Float[Array, "*sites"], temp: Float[Array, ""]
    ) -> Float[Array, "*sites"]:
        """``log a(ΔE)``, elementwise; 0 (certain acceptance) is allowed, +inf is not."""


class MetropolisRule(AbstractAcceptanceRule):
    """``min(1, exp(-ΔE/T))``: accept when ``log u < -ΔE/T`` (no overflow, no ``min``)."""

    name: ClassVar[str] = "metropolis"

    def log_acceptance(
        self, delta_e: Float[Array, "*sites"], temp: Float[Array, ""]
    ) -> Float[Array, "*sites"]:
        return -delta_e / temp


class GlauberRule(AbstractAcceptanceRule):
    """``1 / (1 + exp(ΔE/T))``: the heat-bath rule for two-valued spins (never certain)."""

    name: ClassVar[str] = "glauber"

    def log_acceptance(
        self, delta_e: Float[Array, "*sites"], temp: Float[Array, ""]
    ) -> Float[Array, "*sites"]:
        return -jax.nn.softplus(delta_e / temp)


def as_rule(value: Any) -> Any:
    """A rule from its name (grids, ``from_options``); a rule instance as it is; anything else
    is left for the sampler's validation to name."""
    if isinstance(value, str) and value in RULES:
        return RULES[value]()
    return value
