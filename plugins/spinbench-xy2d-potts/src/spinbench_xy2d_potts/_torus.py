"""Square-lattice helpers for models on an Lx x Ly torus (written against numpy and jax only)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def torus_neighbours(shape: tuple[int, ...]) -> np.ndarray:
    """``(lx*ly, 4)`` flat indices of the up, down, left and right neighbours of each site."""
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


def checkerboard(shape: tuple[int, ...]) -> np.ndarray | None:
    """The two-colouring ``(x + y) % 2`` where it is a proper colouring (both lengths even)."""
    lx, ly = shape
    if lx % 2 or ly % 2:
        return None
    x, y = np.indices((lx, ly))
    return ((x + y) % 2).astype(np.int32)


def rolled_neighbours(states: Array) -> tuple[Array, Array, Array, Array]:
    """The four neighbour arrays of a batch ``(*batch, lx, ly)`` by periodic shifts."""
    return (
        jnp.roll(states, 1, axis=-2),
        jnp.roll(states, -1, axis=-2),
        jnp.roll(states, 1, axis=-1),
        jnp.roll(states, -1, axis=-1),
    )


def torus_correlation(
    vectors: Float[Array, "*batch lx ly d"], distances: np.ndarray
) -> Float[Array, "*batch r"]:
    """Mean of ``v_x . v_{x+r}`` along both lattice axes, at each distance ``r``."""
    values = []
    for r in distances:
        r = int(r)
        along_x = jnp.sum(vectors * jnp.roll(vectors, -r, axis=-3), axis=-1)
        along_y = jnp.sum(vectors * jnp.roll(vectors, -r, axis=-2), axis=-1)
        values.append(0.5 * (jnp.mean(along_x, axis=(-2, -1)) + jnp.mean(along_y, axis=(-2, -1))))
    return jnp.stack(values, axis=-1)
