"""The errors spinbench raises for what a user or a plugin gave it, under one root.

Every error about input (a temperature, a size, an option, a name, a grid file, a run folder,
a lattice too large for memory, a diverged training) is a :class:`SpinbenchError`, so a
command line or a script catches one type and shows its message, which says what was wrong
and what is allowed. Each also derives from the builtin error it refines (``ValueError``,
``LookupError``, ``RuntimeError``), so code written against those keeps working. Errors that
are bugs (a shape mismatch inside spinbench) stay plain Python errors.
"""

from __future__ import annotations

__all__ = [
    "DamagedSamples",
    "ExactSolutionError",
    "FrustratedTorusError",
    "GridError",
    "LoadError",
    "ModelError",
    "OptionError",
    "RegistryError",
    "ReportError",
    "ResourceError",
    "RunFolderError",
    "SpinbenchError",
    "TemperatureError",
    "TrainingDiverged",
    "UnsupportedModelError",
]


class SpinbenchError(Exception):
    """The root of spinbench's errors about its input; the message says what to do."""


class TemperatureError(SpinbenchError, ValueError):
    """A temperature grid that is empty, malformed, too long, or not finite and > 0."""


class ModelError(SpinbenchError, ValueError):
    """An impossible model specification (size, boundary, coupling, model option)."""


class OptionError(SpinbenchError, ValueError):
    """An unknown or invalid option for a sampler or generator."""


class UnsupportedModelError(SpinbenchError, ValueError):
    """A sampler or generator asked to run a model its ``supports()`` refuses."""


class RegistryError(SpinbenchError, LookupError):
    """A name that does not resolve to exactly one registered class.

    ``registered_as`` is the kind the name is registered under when it was asked for as
    another (a sampler's name asked for as a generator), so a command can say how to use it.
    """

    def __init__(self, message: str, *, registered_as: str | None = None) -> None:
        super().__init__(message)
        self.registered_as = registered_as


class ExactSolutionError(SpinbenchError, ValueError):
    """An exact solver that cannot answer: a temperature below its numerical limit, a
    lattice too large to enumerate, a model without that solution."""


class FrustratedTorusError(ExactSolutionError):
    """An antiferromagnetic torus with an odd side: no Kaufman closed form applies."""


class GridError(SpinbenchError, ValueError):
    """A grid file or preset with problems; the message names each key and line."""


class RunFolderError(SpinbenchError, RuntimeError):
    """A run folder that cannot be used: someone else's files, or another run's lock."""


class ResourceError(SpinbenchError, ValueError):
    """A job that cannot fit this machine; the message gives the estimate and the limit."""


class ReportError(SpinbenchError, RuntimeError):
    """A run folder that cannot be reported on."""


class DamagedSamples(SpinbenchError, ValueError):
    """A sample set on disk that cannot be read back; the message names the folder."""


class LoadError(SpinbenchError, ValueError):
    """A saved trained generator that cannot be read, or that is not of the generator and
    model it is loaded as."""


class TrainingDiverged(SpinbenchError, RuntimeError):
    """Training produced a non-finite loss; the message names the temperature and step."""
