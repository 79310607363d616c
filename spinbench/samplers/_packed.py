"""Multi-spin-coded Metropolis checkerboard for the 2D Ising model on an even torus.

The generic checkerboard of :class:`~spinbench.samplers.Metropolis` works for any model through
``delta_energy``: one int8 spin per array element, a float ΔE and a float ``log u`` per site,
masks for the colours. For the Ising model on an Lx x Ly torus with even sides this module
runs the same update (the same acceptance probabilities, up to an error below 2^-24.4) far
more cheaply (``docs/performance.md`` has the measurements):

* **Sublattices.** Each colour of the checkerboard is an ``Lx x Ly/2`` array (the layout of
  NVIDIA's ising-gpu "basic" code): the spin of colour ``c`` at row ``x``, column ``j`` is the
  lattice site ``(x, 2j + (x + c) % 2)``. Its four neighbours, all of the other colour, are
  at rows ``x ± 1`` (column ``j``), and in row ``x`` at columns ``j`` and ``j - 1`` (rows with
  ``(x + c)`` even) or ``j + 1`` (odd). A half-sweep touches the ``N/2`` spins it updates, no
  masks.
* **Multi-spin coding.** The rows are cut into ``W`` blocks of ``R = Lx / W`` rows (``W``
  the largest divisor of ``Lx`` up to 32); bit ``t`` of the uint32 word ``(r, j)`` is the spin
  in row ``t R + r`` (bit 1 = spin -1). Neighbour words are shifts of whole arrays (the row
  above row 0 of block ``t`` is row ``R - 1`` of block ``t - 1``: a one-bit rotation), the
  number of anti-aligned neighbours is a bit-sliced adder, and up to 32 spins move with each
  word.
* **Bit-sliced acceptance.** With ``k`` anti-aligned neighbours (``k`` aligned for J < 0),
  ΔE = (8 - 4k)|J|; a flip with ΔE <= 0 is always accepted and draws nothing. One with
  ΔE = 8|J| or 4|J| is accepted with the Metropolis probability ``p = exp(-ΔE/T)``, computed
  per temperature in float64 on the host (:func:`thresholds`), by comparing a uniform ``u``
  with ``p`` bit by bit, most significant first, for all 32 lanes of a word at once: random
  word ``i`` holds bit ``i`` of every lane's ``u``; a lane is decided at the first bit where
  ``u`` and ``p`` differ (accepted if ``u`` has the 0). After :data:`LEADING_BITS` = 8 words a
  lane is undecided with probability 2^-8; the (at most) four lowest undecided lanes of a
  word then get a fresh 16-bit uniform each, compared with the next 16 bits of ``p``. So a
  word of 32 decisions costs 10 random words (5 Threefry calls) instead of 32, and every
  decision is still independent of every other. **Error**: ``p`` is rounded to 24 bits
  (< 2^-25), and a lane left undecided (more than four ties in its word: probability below
  ``2^-8 C(31,4) 2^-32 < 2^-25``) takes the likelier outcome, so every acceptance
  probability is within :data:`PROBABILITY_ERROR` < 2^-24.4 of ``p``. No exp, log or float in
  the kernel.
* **Random words: Threefry-2x32 in counter mode.** Every word comes from Threefry-2x32 with
  20 rounds, the generator behind ``jax.random``'s default keys (bit for bit the same
  function, checked by the tests; Salmon et al. 2011 report it passing BigCrush with fewer
  rounds and recommend 20 as a safety margin), keyed by the chain's key and applied to counters
  ``(5 e + i, c)`` for call ``i`` of word ``e`` in colour ``c``, and ``(0, 2)`` for the
  chain's key of the next sweep. Called this way it costs a few integer operations per word
  and fuses into the update (no random array is stored). The words are still over half of
  the kernel's time; a cheaper generator was not taken: fewer rounds give up the margin that
  Salmon et al. recommend, and Philox or 64-bit mixers need multiplies that JAX's 32-bit
  integers do not expose (``docs/performance.md``).
* **Many sweeps per call.** The sweeps run in one ``lax.fori_loop`` inside the caller's jit;
  on a GPU, small problems run several sweeps per loop iteration to amortise the per-
  iteration cost of the loop. Arrays are laid out ``(R, Ly/2, batch)`` with the chains
  on the last (fastest) axis, so tiny lattices still give long vectors.

Randomness is fixed by the keys: the same seed gives the same samples on the same device
(and, the arithmetic being exact integer arithmetic, on any device), and the words depend only
on the chain's key at each sweep, so cutting a run into chunks does not change it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Int, Shaped, UInt32

#: Largest number of spins per word (the bits of a uint32).
MAX_WIDTH = 32

#: Sweeps per loop iteration on a GPU when one sweep updates fewer spins than
#: :data:`SMALL_PROBLEM` (amortises the loop's per-iteration cost; 1 on CPU, where it measured
#: slower). Unrolling changes the compiled program, never the samples.
GPU_UNROLL = 4
SMALL_PROBLEM = 1 << 22

#: Leading bits of every decision, bit-sliced: bit ``t`` of random word ``i`` is bit ``i`` (most
#: significant first) of lane ``t``'s uniform ``u``, compared with the same bit of ``p``.
LEADING_BITS = 8
#: Lanes per word of spins that the leading bits leave undecided and that get a fresh 16-bit
#: half of a random word each (lowest lane first) against the next 16 bits of ``p``.
SPARE_LANES = 4
#: Random words per word of spins and colour: five Threefry-2x32 calls (32 words before).
RANDOM_WORDS = LEADING_BITS + SPARE_LANES // 2
#: Bound on the error of every acceptance probability (see the module docstring):
#: ``2^-25`` from rounding ``p`` to 24 bits plus half the probability that a lane is left
#: undecided, ``2^-8 C(31, 4) 2^-32 / 2 < 2^-26``: below ``2^-24.4``.
PROBABILITY_ERROR = 2.0**-25 + 2.0**-26

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _u32(value: int) -> Array:
    return jnp.uint32(value)


def _rotl(x: Array, r: int) -> Array:
    return (x << _u32(r)) | (x >> _u32(32 - r))


def threefry2x32(
    k0: UInt32[Array, "*b"],
    k1: UInt32[Array, "*b"],
    x0: UInt32[Array, "*b"],
    x1: UInt32[Array, "*b"],
) -> tuple[UInt32[Array, "*b"], UInt32[Array, "*b"]]:
    """Threefry-2x32, 20 rounds (Salmon et al. 2011), elementwise with broadcasting.

    The block cipher of ``jax.random``'s default generator, written with plain integer
    operations so that XLA fuses it into its consumers.
    """
    k2 = k0 ^ k1 ^ _u32(_PARITY)
    schedule = (k0, k1, k2)
    x0 = x0 + k0
    x1 = x1 + k1
    for block in range(5):
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + schedule[(block + 1) % 3]
        x1 = x1 + schedule[(block + 2) % 3] + _u32(block + 1)
    return x0, x1


# --------------------------------------------------------------------------- the layout


@dataclasses.dataclass(frozen=True)
class PackedLayout:
    """How an ``Lx x Ly`` torus is stored: two sublattices of ``R x Ly/2`` words of ``W`` bits.

    Static (hashable): it selects the compiled program. ``unroll`` is the number of sweeps per
    loop iteration.
    """

    rows: int
    cols: int
    width: int
    antiferro: bool
    unroll: int = 1

    @property
    def block_rows(self) -> int:
        """``R``: rows per block (words per column of a sublattice)."""
        return self.rows // self.width

    @property
    def half_cols(self) -> int:
        """``Ly / 2``: columns of a sublattice."""
        return self.cols // 2

    @property
    def mask(self) -> int:
        """The ``W`` low bits."""
        return (1 << self.width) - 1

    def parity_mask(self, colour: int) -> np.ndarray:
        """Bits of the words in block row ``r`` whose lattice row ``x`` has ``x + colour`` odd
        (their third neighbour is at column ``j + 1``, the others' at ``j - 1``), ``(R, 1, 1)``."""
        r = np.arange(self.block_rows)[:, None]
        t = np.arange(self.width)[None, :]
        odd = ((t * self.block_rows + r + colour) % 2).astype(np.uint64)
        return np.sum(odd << t.astype(np.uint64), axis=1).astype(np.uint32).reshape(-1, 1, 1)


def packed_width(rows: int) -> int:
    """The word width ``W`` for ``rows`` lattice rows: the largest divisor up to 32."""
    return max(d for d in range(1, MAX_WIDTH + 1) if rows % d == 0)


def layout_for(model: Any, batch: int = 1) -> PackedLayout | None:
    """The packed layout of a nearest-neighbour Ising torus ``model`` with even sides, else
    None. The caller decides that ``model`` is the Hamiltonian this kernel hard-codes
    (:meth:`~spinbench.samplers.Metropolis.packed_layout`); ``batch`` (the number of chains
    updated together) picks the unroll."""
    if model.boundary != "periodic" or len(model.shape) != 2:
        return None
    rows, cols = model.shape
    if rows % 2 or cols % 2 or rows * cols >= 2**32:
        return None
    unroll = 1
    if jax.default_backend() == "gpu" and batch * rows * cols < SMALL_PROBLEM:
        unroll = GPU_UNROLL
    return PackedLayout(rows, cols, packed_width(rows), model.J < 0, unroll)


def thresholds(temps: np.ndarray, J: float) -> np.ndarray:
    """The acceptance probabilities ``p = exp(-ΔE/T)`` for ΔE = 8|J| ("hi") and 4|J| ("lo")
    as :func:`bernoulli_lanes` reads them, ``(4, temps)`` uint32:

    * rows 0, 1: ``floor(p 2^8)``, the leading :data:`LEADING_BITS` bits of ``p``;
    * rows 2, 3: ``round(frac(p 2^8) 2^16)`` (up to ``2^16``): a lane the leading bits leave
      undecided is accepted when its fresh 16-bit uniform is below this.

    ``p`` is computed in float64 and the rest is exact, so ``p`` is rounded to the nearest
    multiple of ``2^-24``: an error of at most ``2^-25``.
    """
    temps = np.asarray(temps, np.float64)
    delta = np.array([8.0, 4.0])[:, None] * abs(float(J))
    scaled = np.exp(-delta / temps[None, :]) * 2.0**LEADING_BITS  # exact: a power of two
    lead = np.minimum(np.floor(scaled), 2.0**LEADING_BITS - 1)
    rest = np.rint((scaled - lead) * 2.0**16)
    return np.concatenate([lead, rest]).astype(np.uint32)


# --------------------------------------------------------------------------- packing


def pack(
    layout: PackedLayout, spins: Shaped[Array, "batch lx ly"]
) -> tuple[UInt32[Array, "r h batch"], UInt32[Array, "r h batch"]]:
    """int8 ±1 lattices to the two sublattices of words, chains on the last axis."""
    batch = spins.shape[0]
    w, r, h = layout.width, layout.block_rows, layout.half_cols
    down = (spins < 0).astype(jnp.uint32).reshape(batch, layout.rows, h, 2)
    even_row = (jnp.arange(layout.rows) % 2 == 0)[None, :, None]
    out = []
    for colour in (0, 1):
        # Colour c sits at column 2j + (x + c) % 2 of row x.
        first, second = (
            (down[..., 0], down[..., 1]) if colour == 0 else (down[..., 1], down[..., 0])
        )
        sub = jnp.where(even_row, first, second).reshape(batch, w, r, h)
        shifts = jnp.arange(w, dtype=jnp.uint32)[None, :, None, None]
        words = jnp.sum(sub << shifts, axis=1, dtype=jnp.uint32)  # disjoint bits: sum = or
        out.append(jnp.moveaxis(words, 0, -1))
    return out[0], out[1]


def unpack(
    layout: PackedLayout, black: UInt32[Array, "r h batch"], white: UInt32[Array, "r h batch"]
) -> Shaped[Array, "batch lx ly"]:
    """The inverse of :func:`pack`: int8 ±1 lattices ``(batch, Lx, Ly)``."""
    batch = black.shape[-1]
    w, h = layout.width, layout.half_cols
    shifts = jnp.arange(w, dtype=jnp.uint32)[None, :, None, None]
    subs = []
    for words in (black, white):
        words = jnp.moveaxis(words, -1, 0)[:, None]  # (batch, 1, R, H)
        bits = (words >> shifts) & jnp.uint32(1)  # (batch, W, R, H): row t R + r
        subs.append(bits.reshape(batch, layout.rows, h))
    even_row = (jnp.arange(layout.rows) % 2 == 0)[None, :, None, None]
    pairs = jnp.where(
        even_row, jnp.stack([subs[0], subs[1]], -1), jnp.stack([subs[1], subs[0]], -1)
    )
    down = pairs.reshape(batch, layout.rows, layout.cols)
    return (1 - 2 * down.astype(jnp.int8)).astype(jnp.int8)


# --------------------------------------------------------------------------- keys


def key_words(keys: Array) -> tuple[UInt32[Array, " batch"], UInt32[Array, " batch"]]:
    """A 64-bit Threefry key per chain from typed keys of any implementation, flattened.

    Threefry keys are used as they are; wider keys (e.g. ``rbg``) are folded by xor.
    """
    data = jax.random.key_data(keys)
    data = data.reshape(-1, data.shape[-1]).astype(jnp.uint32)
    k0, k1 = data[:, 0], data[:, 1]
    for i in range(2, data.shape[-1]):
        if i % 2:
            k1 = k1 ^ data[:, i]
        else:
            k0 = k0 ^ data[:, i]
    return k0, k1


def rewrap_keys(k0: Array, k1: Array, like: Array) -> Array:
    """Typed keys shaped and typed as ``like`` whose :func:`key_words` are ``(k0, k1)``."""
    data = jax.random.key_data(like)
    width = data.shape[-1]
    words = jnp.stack([k0, k1], axis=-1)
    if width > 2:
        words = jnp.concatenate([words, jnp.zeros((words.shape[0], width - 2), jnp.uint32)], -1)
    words = words.reshape(data.shape)
    return jax.random.wrap_key_data(words, impl=jax.random.key_impl(like))


def supports_key(keys: Array) -> bool:
    """Whether the keys carry at least the 64 bits this kernel needs."""
    return _key_width(keys.dtype) >= 2


@functools.cache
def _key_width(dtype: Any) -> int:
    """uint32 words per key of a typed-key dtype (traced once per dtype: no device work)."""
    shape = jax.eval_shape(jax.random.key_data, jax.ShapeDtypeStruct((), dtype)).shape
    return int(shape[-1]) if shape else 1


# --------------------------------------------------------------------------- the sweep


def _rotate_up(layout: PackedLayout, words: Array) -> Array:
    """Bit t -> t + 1 (cyclic in W bits): row ``R-1`` of block ``t-1`` moves under block t."""
    w = layout.width
    if w == 1:
        return words
    return ((words << _u32(1)) | (words >> _u32(w - 1))) & _u32(layout.mask)


def _rotate_down(layout: PackedLayout, words: Array) -> Array:
    w = layout.width
    if w == 1:
        return words
    return ((words >> _u32(1)) | (words << _u32(w - 1))) & _u32(layout.mask)


def _half_sweep(
    layout: PackedLayout,
    own: UInt32[Array, "r h batch"],
    other: UInt32[Array, "r h batch"],
    limits: UInt32[Array, "4 batch"],
    key: tuple[UInt32[Array, " batch"], UInt32[Array, " batch"]],
    colour: int,
) -> UInt32[Array, "r h batch"]:
    """Update every spin of one colour at once; returns its new words."""
    r = layout.block_rows
    up = jnp.concatenate([_rotate_up(layout, other[r - 1 :]), other[: r - 1]], axis=0)
    down = jnp.concatenate([other[1:], _rotate_down(layout, other[:1])], axis=0)
    odd = jnp.asarray(layout.parity_mask(colour))
    side = (jnp.roll(other, -1, axis=1) & odd) | (jnp.roll(other, 1, axis=1) & ~odd)
    mask = _u32(layout.mask)
    if layout.antiferro:  # aligned neighbours cost energy: count those instead
        own = own ^ mask
    a1, a2, a3, a4 = own ^ up, own ^ down, own ^ other, own ^ side
    s1, c1, s2, c2 = a1 ^ a2, a1 & a2, a3 ^ a4, a3 & a4
    none = ~(s1 | s2 | c1 | c2) & mask  # k = 0: ΔE = 8|J|
    one = (s1 ^ s2) & ~(c1 | c2) & mask  # k = 1: ΔE = 4|J|
    accept = bernoulli_lanes(none, one, limits, random_words(layout, own.shape, key, colour))
    flip = (accept | ~(none | one)) & mask
    if layout.antiferro:
        own = own ^ mask
    return own ^ flip


def random_words(
    layout: PackedLayout,
    shape: tuple[int, ...],
    key: tuple[UInt32[Array, " batch"], UInt32[Array, " batch"]],
    colour: int,
) -> list[UInt32[Array, "r h batch"]]:
    """The :data:`RANDOM_WORDS` words of every word of spins of one colour: Threefry-2x32 of
    the chain's key at counters ``(e * RANDOM_WORDS / 2 + i, colour)`` for word ``e`` of the
    sublattice (row-major over ``(R, Ly/2)``), ``i < RANDOM_WORDS / 2``; the two outputs of
    call ``i`` are words ``2i`` and ``2i + 1``."""
    calls = RANDOM_WORDS // 2
    element = lax.broadcasted_iota(jnp.uint32, shape, 0) * _u32(shape[1])
    element = element + lax.broadcasted_iota(jnp.uint32, shape, 1)
    base = element * _u32(calls)
    k0, k1 = key
    words: list[Array] = []
    for i in range(calls):
        words.extend(threefry2x32(k0, k1, base + _u32(i), jnp.full(shape, colour, jnp.uint32)))
    return words


def bernoulli_lanes(
    high: UInt32[Array, "*s batch"],
    low: UInt32[Array, "*s batch"],
    limits: UInt32[Array, "4 batch"],
    words: list[UInt32[Array, "*s batch"]],
) -> UInt32[Array, "*s batch"]:
    """Bit-sliced Bernoulli decisions: bit ``t`` of the result is 1 with probability ``p_hi``
    where bit ``t`` of ``high`` is set and ``p_lo`` where that of ``low`` is (disjoint
    masks), independently per lane; 0 elsewhere. ``limits``: :func:`thresholds` of each
    chain; ``words``: :data:`RANDOM_WORDS` random words. See the module docstring.
    """
    lead_hi, lead_lo, rest_hi, rest_lo = (limits[i] for i in range(4))
    zero, one = _u32(0), _u32(1)
    accept = jnp.zeros_like(high)
    undecided = high | low
    # Bit i of each lane's u against bit i of its p, most significant first: a lane is
    # decided at the first bit where they differ (u has 0 where p has 1: u < p, accept).
    for i in range(LEADING_BITS):
        shift = _u32(LEADING_BITS - 1 - i)
        target = (high & (zero - ((lead_hi >> shift) & one))) | (
            low & (zero - ((lead_lo >> shift) & one))
        )
        u = words[i]
        accept = accept | (undecided & target & ~u)
        undecided = undecided & ~(u ^ target)
    # A lane still undecided (probability 2^-8) has u in [p_8, p_8 + 2^-8), p_8 = p's leading
    # bits: accept with probability frac(p 2^8), from a fresh 16-bit uniform, lowest first.
    for j in range(SPARE_LANES):
        lowest = undecided & (zero - undecided)
        word = words[LEADING_BITS + j // 2]
        u = (word >> _u32(16)) if j % 2 else (word & _u32(0xFFFF))
        ok_hi = zero - (u < rest_hi).astype(jnp.uint32)
        ok_lo = zero - (u < rest_lo).astype(jnp.uint32)
        accept = accept | (lowest & ((high & ok_hi) | (low & ok_lo)))
        undecided = undecided ^ lowest
    # More than SPARE_LANES undecided lanes in one word (probability < 2^-25 for any lane):
    # the rest take the likelier outcome, accepted where frac(p 2^8) >= 1/2.
    half = _u32(1 << 15)
    likely = (high & (zero - (rest_hi >= half).astype(jnp.uint32))) | (
        low & (zero - (rest_lo >= half).astype(jnp.uint32))
    )
    return accept | (undecided & likely)


Carry = tuple[Array, Array, Array, Array, Array]


def _sweep(layout: PackedLayout, limits: Array, carry: Carry) -> Carry:
    """One sweep (colour 0, then colour 1) of every chain; counts the flips per word."""
    black, white, k0, k1, flips = carry
    new_black = _half_sweep(layout, black, white, limits, (k0, k1), 0)
    new_white = _half_sweep(layout, white, new_black, limits, (k0, k1), 1)
    k0, k1 = threefry2x32(k0, k1, jnp.zeros_like(k0), jnp.full_like(k0, 2))
    flips = flips + (
        lax.population_count(black ^ new_black) + lax.population_count(white ^ new_white)
    ).astype(jnp.int32)
    return new_black, new_white, k0, k1, flips


def run_sweeps(
    layout: PackedLayout,
    limits: UInt32[Array, "4 batch"],
    carry: Carry,
    n_sweeps: Int[Array, ""] | int,
) -> Carry:
    """``n_sweeps`` sweeps (traced count) in one loop, ``layout.unroll`` per iteration.

    ``carry`` is ``(black, white, k0, k1, flips)``; ``flips`` counts flipped spins per word.
    """

    def body(_: Any, c: Carry) -> Carry:
        return _sweep(layout, limits, c)

    if layout.unroll == 1:
        return lax.fori_loop(0, n_sweeps, body, carry)

    def several(_: Any, c: Carry) -> Carry:
        for _ in range(layout.unroll):
            c = _sweep(layout, limits, c)
        return c

    carry = lax.fori_loop(0, n_sweeps // layout.unroll, several, carry)
    return lax.fori_loop(0, n_sweeps % layout.unroll, body, carry)


__all__ = [
    "GPU_UNROLL",
    "LEADING_BITS",
    "PROBABILITY_ERROR",
    "RANDOM_WORDS",
    "SPARE_LANES",
    "PackedLayout",
    "bernoulli_lanes",
    "key_words",
    "layout_for",
    "pack",
    "packed_width",
    "random_words",
    "rewrap_keys",
    "run_sweeps",
    "supports_key",
    "threefry2x32",
    "thresholds",
    "unpack",
]
