"""Spin models: the abstract contract and the built-in models."""

from .base import AbstractModel, ModelError, format_size, parse_size, wrap_angle
from .ising import Ising1D, Ising2D
from .xy import XY1D

__all__ = [
    "XY1D",
    "AbstractModel",
    "Ising1D",
    "Ising2D",
    "ModelError",
    "format_size",
    "parse_size",
    "wrap_angle",
]
