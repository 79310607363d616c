"""The sampler contract: Markov chain Monte Carlo over a temperature grid.

A sampler is a small immutable :class:`equinox.Module` whose fields are its options (static,
hashable): e.g. ``Metropolis(chains=20, warmup=2000, sweeps=10000, every=20)``. Its
:meth:`AbstractSampler.sample` runs every temperature and chain in one jitted program and
returns a :class:`~spinbench._samples.Samples` with states ``(temps, chains, samples, *lattice)``.
"""

from __future__ import annotations

import abc

import numpy as np
from jaxtyping import PRNGKeyArray

from .._methods import AbstractMethod
from .._samples import Samples
from ..models._base import AbstractModel


class AbstractSampler(AbstractMethod):
    """A Markov chain Monte Carlo sampler (see the module docstring for the contract).

    A subclass provides ``name`` and :meth:`sample`; its dataclass fields are its options
    (:class:`~spinbench._methods.AbstractMethod`). Chain samplers get the whole sampling loop
    from :class:`~spinbench.samplers.AbstractChainSampler` instead.
    """

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
