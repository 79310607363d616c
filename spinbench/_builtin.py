"""spinbench's own models, samplers and generators, registered like any third-party plugin."""

from __future__ import annotations

from ._hookspecs import hookimpl
from .generators import AVB, VAE, DenseVAE
from .models import XY1D, Ising1D, Ising2D
from .samplers import Metropolis


@hookimpl
def spinbench_register_models() -> list[type]:
    return [Ising1D, Ising2D, XY1D]


@hookimpl
def spinbench_register_samplers() -> list[type]:
    return [Metropolis]


@hookimpl
def spinbench_register_generators() -> list[type]:
    return [VAE, DenseVAE, AVB]
