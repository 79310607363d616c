"""spinbench's own models, samplers and generators, registered like any third-party plugin."""

from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def spinbench_register_models() -> list[type]:
    from .models import XY1D, Ising1D, Ising2D

    return [Ising1D, Ising2D, XY1D]


@hookimpl
def spinbench_register_samplers() -> list[type]:
    from .samplers.metropolis import Metropolis

    return [Metropolis]


@hookimpl
def spinbench_register_generators() -> list[type]:
    from .generators import AVB, VAE, DenseVAE

    return [VAE, DenseVAE, AVB]
