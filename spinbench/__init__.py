"""spinbench: does a generative model really sample the Boltzmann distribution?

Benchmark suite crossing classical spin models with Monte Carlo samplers and neural
generators over temperature grids, against exact solutions. Public API for users and plugin
authors is re-exported here.
"""

from __future__ import annotations

import importlib.metadata

try:
    __version__ = importlib.metadata.version("spinbench")
except importlib.metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+unknown"

from .exact.result import EnergyDistribution, ExactResult
from .generators.base import AbstractGenerator, TrainedGenerator, TrainingDiverged
from .hookspecs import hookimpl, hookspec
from .models.base import AbstractModel, ModelError
from .registry import (
    RegistryError,
    get_generator,
    get_method,
    get_model,
    get_registry,
    get_sampler,
)
from .samplers.base import AbstractSampler, OptionError
from .samples import Samples

__all__ = [
    "AbstractGenerator",
    "AbstractModel",
    "AbstractSampler",
    "EnergyDistribution",
    "ExactResult",
    "ModelError",
    "OptionError",
    "RegistryError",
    "Samples",
    "TrainedGenerator",
    "TrainingDiverged",
    "__version__",
    "get_generator",
    "get_method",
    "get_model",
    "get_registry",
    "get_sampler",
    "hookimpl",
    "hookspec",
]
