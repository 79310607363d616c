"""spinbench: does a generative model really sample the Boltzmann distribution?

Benchmark suite crossing classical spin models with Monte Carlo samplers and neural
generators over temperature grids, against exact solutions.

This module is the public API for users and plugin authors, with the subpackages
``spinbench.models``, ``spinbench.exact``, ``spinbench.samplers``, ``spinbench.generators``,
``spinbench.stats``, ``spinbench.testing`` (the conformance kit) and ``spinbench.runner``
(grids and run folders from Python). Modules whose names start with ``_`` are internal and may
change without notice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import (
    DamagedSamples,
    ExactSolutionError,
    GridError,
    LoadError,
    ModelError,
    OptionError,
    RegistryError,
    ReportError,
    ResourceError,
    RunFolderError,
    SpinbenchError,
    TemperatureError,
    TrainingDiverged,
    UnsupportedModelError,
)
from ._hookspecs import hookimpl, hookspec
from ._version import __version__

if TYPE_CHECKING:
    from ._methods import AbstractMethod, options_of
    from ._registry import (
        PluginWarning,
        Registry,
        get_generator,
        get_method,
        get_model,
        get_registry,
        get_sampler,
        load_registry,
        plugins_registered,
    )
    from ._samples import Samples
    from .exact import EnergyDistribution, ExactResult
    from .generators import AbstractGenerator, AbstractObjective, TrainedGenerator
    from .models import AbstractModel
    from .provenance import provenance
    from .samplers import AbstractChainSampler, AbstractSampler
    from .temperatures import check_temperatures, parse_temps

#: Public names imported on first use (PEP 562), by module: importing spinbench (and with it
#: the command line) does not import JAX until something that needs it is asked for.
_LAZY = {
    "._methods": ("AbstractMethod", "options_of"),
    "._registry": (
        "PluginWarning",
        "Registry",
        "get_generator",
        "get_method",
        "get_model",
        "get_registry",
        "get_sampler",
        "load_registry",
        "plugins_registered",
    ),
    "._samples": ("Samples",),
    ".exact": ("EnergyDistribution", "ExactResult"),
    ".generators": ("AbstractGenerator", "AbstractObjective", "TrainedGenerator"),
    ".models": ("AbstractModel",),
    ".provenance": ("provenance",),
    ".samplers": ("AbstractChainSampler", "AbstractSampler"),
    ".temperatures": ("check_temperatures", "parse_temps"),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}
#: Public subpackages, reachable as attributes after ``import spinbench`` as before.
_SUBPACKAGES = ("exact", "generators", "models", "runner", "samplers", "stats", "testing")


def __getattr__(name: str) -> Any:
    import importlib

    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE, *_SUBPACKAGES})


__all__ = [
    "AbstractChainSampler",
    "AbstractGenerator",
    "AbstractMethod",
    "AbstractModel",
    "AbstractObjective",
    "AbstractSampler",
    "DamagedSamples",
    "EnergyDistribution",
    "ExactResult",
    "ExactSolutionError",
    "GridError",
    "LoadError",
    "ModelError",
    "OptionError",
    "PluginWarning",
    "Registry",
    "RegistryError",
    "ReportError",
    "ResourceError",
    "RunFolderError",
    "Samples",
    "SpinbenchError",
    "TemperatureError",
    "TrainedGenerator",
    "TrainingDiverged",
    "UnsupportedModelError",
    "__version__",
    "check_temperatures",
    "get_generator",
    "get_method",
    "get_model",
    "get_registry",
    "get_sampler",
    "hookimpl",
    "hookspec",
    "load_registry",
    "options_of",
    "parse_temps",
    "plugins_registered",
    "provenance",
]
