"""Spin models: the contract, the built-in models and the lattice helpers plugins build on."""

from .._errors import ModelError
from ._base import AbstractModel, format_size, parse_size, wrap_angle
from ._ising import Ising1D, Ising2D
from ._lattice import (
    chain_correlation,
    chain_neighbours,
    checkerboard_colouring,
    rolled_neighbours,
    torus_correlation,
    torus_neighbours,
)
from ._xy import XY1D

__all__ = [
    "XY1D",
    "AbstractModel",
    "Ising1D",
    "Ising2D",
    "ModelError",
    "chain_correlation",
    "chain_neighbours",
    "checkerboard_colouring",
    "format_size",
    "parse_size",
    "rolled_neighbours",
    "torus_correlation",
    "torus_neighbours",
    "wrap_angle",
]
