"""The generator contract: neural samplers trained on configurations at each temperature.

A generator is a small immutable :class:`equinox.Module` whose fields are its options (static,
hashable), e.g. ``VAE(epochs=100, batch_size=500, learning_rate=1e-3)``. It trains one
independent network per temperature, all temperatures together in one jitted program
(parameters stacked along a leading temperature axis, ``eqx.filter_vmap``), and generates
independent configurations in the model's spin representation.

A subclass provides ``name``, :meth:`AbstractGenerator.init`, :meth:`AbstractGenerator.fit`
and :meth:`AbstractGenerator.generate_states`; :class:`TrainedGenerator` (returned by ``fit``)
adds generation into :class:`~spinbench.samples.Samples`, saving and loading.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar, Self

import equinox as eqx
import numpy as np
from jaxtyping import Array, PRNGKeyArray, PyTree

from ..models.base import AbstractModel
from ..samplers.base import build_from_options
from ..samples import Samples


class TrainingDiverged(RuntimeError):
    """Training produced a non-finite loss; the message names the temperature and step."""


class AbstractGenerator(eqx.Module):
    """A generative model of spin configurations (see the module docstring for the contract).

    Its dataclass fields are its options; validate them in ``__check_init__``.
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
        """None if this generator can learn ``model``'s spins, else the reason it cannot."""
        return None

    @abc.abstractmethod
    def init(self, model: AbstractModel, n_temps: int, *, key: PRNGKeyArray) -> PyTree:
        """Untrained parameters for ``n_temps`` temperatures, stacked on a leading axis.

        Also the skeleton that :meth:`TrainedGenerator.load` deserialises into.
        """

    @abc.abstractmethod
    def fit(self, model: AbstractModel, data: Samples, *, key: PRNGKeyArray) -> TrainedGenerator:
        """Train one network per temperature of ``data`` (all temperatures in one program)."""

    @abc.abstractmethod
    def generate_states(
        self, model: AbstractModel, params: PyTree, n: int, *, key: PRNGKeyArray
    ) -> Array:
        """``n`` independent configurations per temperature: ``(temps, n, *lattice)``."""


@dataclasses.dataclass
class TrainedGenerator:
    """A generator with its trained parameters, training curves and divergence record.

    ``history`` maps a curve name (e.g. ``"loss"``) to ``(temps, steps)`` arrays;
    ``diverged_step[t]`` is the first step with a non-finite loss at temperature ``t``,
    or -1 when training stayed finite.
    """

    generator: AbstractGenerator
    model: AbstractModel
    temps: np.ndarray
    params: PyTree
    history: dict[str, np.ndarray]
    diverged_step: np.ndarray
    seed: int | None = None
