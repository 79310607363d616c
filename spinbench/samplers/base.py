"""The sampler contract: Markov chain Monte Carlo over a temperature grid.

A sampler is a small immutable :class:`equinox.Module` whose fields are its options (static,
hashable): e.g. ``Metropolis(chains=20, warmup=2000, sweeps=10000, every=20)``. Its
:meth:`AbstractSampler.sample` runs every temperature and chain in one jitted program and
returns a :class:`~spinbench.samples.Samples` with states ``(temps, chains, samples, *lattice)``.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Self

import equinox as eqx
import numpy as np
from jaxtyping import PRNGKeyArray

from ..models.base import AbstractModel
from ..samples import Samples


class OptionError(ValueError):
    """An unknown or invalid option for a sampler or generator."""


def options_of(cls: type) -> dict[str, Any]:
    """The option names of a sampler or generator class with their defaults."""
    return {
        f.name: (f.default if f.default is not dataclasses.MISSING else None)
        for f in dataclasses.fields(cls)
        if not f.name.startswith("_")
    }


def build_from_options(cls: type, options: dict[str, Any]) -> Any:
    """Instantiate ``cls`` from keyword options, naming unknown keys and valid ones."""
    valid = options_of(cls)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise OptionError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for {cls.name}; "  # type: ignore[attr-defined]
            f"valid options: {', '.join(sorted(valid))}"
        )
    try:
        return cls(**options)
    except (TypeError, ValueError) as error:
        raise OptionError(f"invalid options for {cls.name}: {error}") from error  # type: ignore[attr-defined]


class AbstractSampler(eqx.Module):
    """A Markov chain Monte Carlo sampler (see the module docstring for the contract).

    A subclass provides ``name`` and :meth:`sample`; its dataclass fields are its options.
    Validate options in ``__check_init__`` and raise ``ValueError`` with a clear message.
    """

    name: ClassVar[str]

    @classmethod
    def from_options(cls, **options: Any) -> Self:
        """Build from keyword options (as in a grid file); unknown keys are a clear error."""
        return build_from_options(cls, options)

    def settings(self) -> dict[str, Any]:
        """The options of this instance, JSON-friendly."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def supports(self, model: AbstractModel) -> str | None:
        """None if this sampler can run ``model``, else the reason it cannot."""
        return None

    @abc.abstractmethod
    def sample(
        self,
        model: AbstractModel,
        temps: np.ndarray,
        *,
        key: PRNGKeyArray,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> Samples:
        """Sample ``model`` at every temperature of ``temps`` (1D, > 0).

        ``seed`` is recorded in the provenance (a key does not reveal it); ``progress``
        shows a progress bar (None: only when stderr is a terminal).
        """
