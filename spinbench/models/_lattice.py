"""Neighbour tables, colourings and correlation helpers for chains and square tori.

Public (``spinbench.models``): plugin models on these lattices build on them rather than
copying them.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def chain_neighbours(n: int, boundary: str) -> np.ndarray:
    """``(n, 2)`` table of left and right neighbours of a chain; ``-1`` past a free end."""
    sites = np.arange(n)
    left, right = sites - 1, sites + 1
    if boundary == "periodic":
        left, right = left % n, right % n
    else:
        right = np.where(right < n, right, -1)
    return np.stack([left, right], axis=1).astype(np.int32)


def torus_neighbours(shape: tuple[int, int]) -> np.ndarray:
    """``(lx*ly, 4)`` table of the up, down, left and right neighbours on a torus."""
    lx, ly = shape
    x, y = np.divmod(np.arange(lx * ly), ly)
    return np.stack(
        [
            ((x - 1) % lx) * ly + y,
            ((x + 1) % lx) * ly + y,
            x * ly + (y - 1) % ly,
            x * ly + (y + 1) % ly,
        ],
        axis=1,
    ).astype(np.int32)


def checkerboard_colouring(shape: tuple[int, ...]) -> np.ndarray | None:
    """The two-colouring ``(x + y) % 2`` of an Lx x Ly torus, where it is a proper colouring
    (both lengths even), else None."""
    lx, ly = shape
    if lx % 2 or ly % 2:
        return None
    x, y = np.indices((lx, ly))
    return ((x + y) % 2).astype(np.int32)


def rolled_neighbours(states: Array) -> tuple[Array, Array, Array, Array]:
    """The four neighbours of every site of a torus batch ``(*batch, lx, ly)``, by periodic
    shifts (up, down, left, right): faster than gathering through the neighbour table."""
    return (
        jnp.roll(states, 1, axis=-2),
        jnp.roll(states, -1, axis=-2),
        jnp.roll(states, 1, axis=-1),
        jnp.roll(states, -1, axis=-1),
    )


def chain_correlation(
    vectors: Float[Array, "*batch n d"], distances: np.ndarray, boundary: str
) -> Float[Array, "*batch r"]:
    """Mean of ``v_i . v_{i+r}`` over all pairs at each distance r of a chain."""
    n = vectors.shape[-2]
    values = []
    for r in distances:
        r = int(r)
        if boundary == "periodic":
            partner = jnp.roll(vectors, -r, axis=-2)
            values.append(jnp.mean(jnp.sum(vectors * partner, axis=-1), axis=-1))
        else:
            pairs = jnp.sum(vectors[..., : n - r, :] * vectors[..., r:, :], axis=-1)
            values.append(jnp.mean(pairs, axis=-1))
    return jnp.stack(values, axis=-1)


def torus_correlation(
    vectors: Float[Array, "*batch lx ly d"], distances: np.ndarray
) -> Float[Array, "*batch r"]:
    """Mean of ``v_x . v_{x+r}`` along both axes of a torus at each distance r."""
    values = []
    for r in distances:
        r = int(r)
        along_x = jnp.sum(vectors * jnp.roll(vectors, -r, axis=-3), axis=-1)
        along_y = jnp.sum(vectors * jnp.roll(vectors, -r, axis=-2), axis=-1)
        values.append(0.5 * (jnp.mean(along_x, axis=(-2, -1)) + jnp.mean(along_y, axis=(-2, -1))))
    return jnp.stack(values, axis=-1)


__all__ = [
    "chain_correlation",
    "chain_neighbours",
    "checkerboard_colouring",
    "rolled_neighbours",
    "torus_correlation",
    "torus_neighbours",
]
