"""The multi-spin-coded Ising2D checkerboard kernel (``spinbench.samplers._packed``).

Three kinds of checks: the pieces (Threefry against JAX's own, packing, thresholds); the whole
kernel bit for bit against a slow, obvious NumPy version of the same Markov chain (full
lattice, rolls, one site at a time per colour, the same random words), so the packed layout
cannot hide a wrong neighbour; and the distribution against exact enumeration (χ² over all
states, acceptance rate), as for the generic kernel in ``test_metropolis.py``.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from typing import Any, ClassVar

import jax
import jax.extend.random as jax_random
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

from spinbench import _c_reference, _throughput
from spinbench.cli import main
from spinbench.exact import boltzmann_log_probabilities, enumerate_states, state_index
from spinbench.models import XY1D, Ising1D, Ising2D

# _packed: the kernel's internal pieces (Threefry, packing, thresholds, the sweep loop),
# unit-tested directly.
from spinbench.samplers import (
    GlauberRule,
    Metropolis,
    MetropolisRule,
    MetropolisState,
    PackedMetropolisState,
    _packed,
)

# --------------------------------------------------------------------------- a NumPy model


def np_threefry(k0: Any, k1: Any, x0: Any, x1: Any) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32 (20 rounds) in NumPy uint32 arithmetic, written from the paper."""
    rotations = ((13, 15, 26, 6), (17, 29, 16, 24))
    arrays: list[np.ndarray] = [np.asarray(v, np.uint32) for v in (k0, k1, x0, x1)]
    a0, a1, y0, y1 = (np.array(v) for v in np.broadcast_arrays(*arrays))
    ks = (a0, a1, a0 ^ a1 ^ np.uint32(0x1BD11BDA))
    y0, y1 = y0 + ks[0], y1 + ks[1]
    for block in range(5):
        for r in rotations[block % 2]:
            y0 = y0 + y1
            y1 = ((y1 << np.uint32(r)) | (y1 >> np.uint32(32 - r))) ^ y0
        y0 = y0 + ks[(block + 1) % 3]
        y1 = y1 + ks[(block + 2) % 3] + np.uint32(block + 1)
    return y0, y1


def random_words_np(k0: Any, k1: Any, element: np.ndarray, colour: int) -> list[np.ndarray]:
    """The kernel's random words of word ``element`` of one colour, from the paper's Threefry:
    call ``i`` at counter ``(element * calls + i, colour)`` gives words ``2i`` and ``2i + 1``."""
    calls = _packed.RANDOM_WORDS // 2
    words: list[np.ndarray] = []
    for i in range(calls):
        counter = (element * calls + i).astype(np.uint32)
        words.extend(np_threefry(k0, k1, counter, colour))
    return words


def reference_decisions(
    need: np.ndarray, lead: np.ndarray, rest: np.ndarray, words: list[np.ndarray], lane: np.ndarray
) -> np.ndarray:
    """Accept or not, site by site, the obvious way: ``need`` ``(batch, W, R, H)`` marks the
    sites that need a draw (lanes ``t`` on axis 1 of word ``(r, j)``), ``lead`` and ``rest``
    their thresholds, ``words`` the words of each site's word, ``lane`` its bit ``t``.

    A site's 8-bit uniform is bit ``t`` of words 0..7 (word 0 most significant): below
    ``lead``, accept; above, reject; equal (a tie), its rank among the tied sites of its word
    by lane says which 16-bit half of words 8, 9 is its second uniform (accept when below
    ``rest``); ties past the fourth accept when ``rest >= 2^15``.
    """
    bits = [(w >> lane.astype(np.uint32)) & np.uint32(1) for w in words]
    u8 = sum(bits[i].astype(np.int64) << (7 - i) for i in range(_packed.LEADING_BITS))
    tie = need & (u8 == lead)
    rank = np.cumsum(tie, axis=1) - tie  # tied lanes below this one, in the same word
    spare = np.zeros(need.shape, np.int64)
    for j in range(_packed.SPARE_LANES):
        word = words[_packed.LEADING_BITS + j // 2].astype(np.int64)
        half = (word >> 16) if j % 2 else (word & 0xFFFF)
        spare = np.where(rank == j, half, spare)
    second = np.where(rank < _packed.SPARE_LANES, spare < rest, rest >= 2**15)
    return need & ((u8 < lead) | (tie & second))


def reference_sweeps(
    model: Ising2D, temps: np.ndarray, spins: np.ndarray, keys: np.ndarray, n_sweeps: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The packed kernel's Markov chain, obviously: ``spins (temps, chains, Lx, Ly)``, keys
    ``(temps, chains, 2)`` uint32. Returns spins, keys and flips per chain.

    Full lattices and rolls; sites are regrouped as ``(batch, W, R, Ly)`` (row ``x = t R + r``)
    only to find each site's word ``(r, y // 2)`` and lane ``t``.
    """
    lx, ly = model.shape
    width = _packed.packed_width(lx)
    rows = lx // width
    n_temps, n_chains = spins.shape[:2]
    batch = n_temps * n_chains
    spins = spins.reshape(batch, width, rows, ly).astype(np.int64)
    k0, k1 = (keys.reshape(-1, 2)[:, i].copy() for i in (0, 1))
    limits = np.repeat(_packed.thresholds(temps, model.J), n_chains, axis=1).astype(np.int64)
    lane, row, y = np.meshgrid(np.arange(width), np.arange(rows), np.arange(ly), indexing="ij")
    x = lane * rows + row
    element = (row * (ly // 2) + y // 2).astype(np.uint32)
    flips = np.zeros(batch, np.int64)
    sign = 1 if model.J > 0 else -1

    def per_chain(v: np.ndarray) -> np.ndarray:
        return v[:, None, None, None]

    for _ in range(n_sweeps):
        for colour in (0, 1):
            words = random_words_np(per_chain(k0), per_chain(k1), element, colour)
            lattice = spins.reshape(batch, lx, ly)
            nsum = sum(np.roll(lattice, s, a) for s in (1, -1) for a in (1, 2))
            level = (sign * lattice * nsum).reshape(spins.shape)  # 4: ΔE = 8|J|, 2: 4|J|
            mine = (x + y) % 2 == colour
            high, low = mine & (level == 4), mine & (level == 2)
            lead = np.where(high, per_chain(limits[0]), per_chain(limits[1]))
            rest = np.where(high, per_chain(limits[2]), per_chain(limits[3]))
            accept = reference_decisions(high | low, lead, rest, words, lane)
            accept |= mine & (level <= 0)
            spins = np.where(accept, -spins, spins)
            flips += accept.sum(axis=(1, 2, 3))
        k0, k1 = np_threefry(k0, k1, np.uint32(0), np.uint32(2))
    keys = np.stack([k0, k1], -1).reshape(n_temps, n_chains, 2)
    shape = (n_temps, n_chains)
    return spins.reshape(*shape, lx, ly).astype(np.int8), keys, flips.reshape(shape)


def old_stream_sweeps(
    model: Ising2D, temps: np.ndarray, spins: np.ndarray, keys: np.ndarray, n_sweeps: int
) -> tuple[np.ndarray, np.ndarray]:
    """The kernel's chain before issue 17 (one 32-bit Threefry word per site, accepted when
    ``u <= ceil(p 2^32) - 1``), for a statistical comparison with the new stream. Returns
    spins ``(temps, chains, Lx, Ly)`` and flips per chain."""
    lx, ly = model.shape
    width = _packed.packed_width(lx)
    rows, hashes = lx // width, (width + 1) // 2
    n_temps, n_chains = spins.shape[:2]
    spins = spins.reshape(-1, lx, ly).astype(np.int64)
    k0, k1 = (keys.reshape(-1, 2)[:, i].copy() for i in (0, 1))
    delta = np.array([8.0, 4.0])[:, None] * abs(model.J)
    m = np.ceil(np.exp(-delta / np.asarray(temps)[None, :]) * 2.0**32) - 1.0
    limits = np.repeat(np.clip(m, 0, 2.0**32 - 1).astype(np.uint32), n_chains, axis=1)
    x, y = np.indices((lx, ly))
    block, row = x // rows, x % rows
    counter = ((row * (ly // 2) + y // 2) * hashes + block // 2).astype(np.uint32)
    flips = np.zeros(len(spins), np.int64)
    sign = 1 if model.J > 0 else -1
    for _ in range(n_sweeps):
        for colour in (0, 1):
            y0, y1 = np_threefry(k0[:, None, None], k1[:, None, None], counter, colour)
            word = np.where(block % 2 == 0, y0, y1)
            nsum = sum(np.roll(spins, shift, axis) for shift in (1, -1) for axis in (1, 2))
            level = sign * spins * nsum
            accept = (
                (level <= 0)
                | ((level == 4) & (word <= limits[0][:, None, None]))
                | ((level == 2) & (word <= limits[1][:, None, None]))
            )
            accept &= (x + y) % 2 == colour
            spins = np.where(accept, -spins, spins)
            flips += accept.sum(axis=(1, 2))
        k0, k1 = np_threefry(k0, k1, np.uint32(0), np.uint32(2))
    shape = (n_temps, n_chains)
    return spins.reshape(*shape, lx, ly).astype(np.int8), flips.reshape(shape)


def key_words(state: PackedMetropolisState) -> np.ndarray:
    """The packed chains' Threefry keys as ``(temps, chains, 2)`` uint32 words."""
    return np.stack([np.asarray(state.k0), np.asarray(state.k1)], -1).reshape(*state.batch, 2)


def record_in_pieces(
    sampler: Metropolis, model: Ising2D, temps: np.ndarray, state: Any, pieces: list[int]
) -> tuple[Any, np.ndarray]:
    """``record`` called once per entry of ``pieces``; the final state and every
    configuration recorded, ``(temps, chains, sum(pieces), *lattice)``."""
    measured = []
    for n in pieces:
        state, configurations = sampler.record(model, temps, state, n)
        measured.append(np.asarray(configurations))
    return state, np.concatenate(measured, axis=2)


def assert_same_state(a: Any, b: Any) -> None:
    """Two chain states are equal leaf by leaf (keys compared by their data)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = (
            jax.random.key_data(v) if jnp.issubdtype(v.dtype, jax.dtypes.prng_key) else v
            for v in (x, y)
        )
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# --------------------------------------------------------------------------- pieces


def test_threefry_is_jax_threefry_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    count = rng.integers(0, 2**32, 2 * 1000, dtype=np.uint64).astype(np.uint32)
    for key in ([0, 0], [1, 2], [0xDEADBEEF, 0x12345678]):
        k0, k1 = jnp.uint32(key[0]), jnp.uint32(key[1])
        pair = (k0, k1)
        expected = np.asarray(jax_random.threefry_2x32(pair, jnp.asarray(count)))
        y0, y1 = _packed.threefry2x32(k0, k1, jnp.asarray(count[:1000]), jnp.asarray(count[1000:]))
        np.testing.assert_array_equal(np.concatenate([y0, y1]), expected)
        n0, n1 = np_threefry(np.uint32(key[0]), np.uint32(key[1]), count[:1000], count[1000:])
        np.testing.assert_array_equal(np.concatenate([n0, n1]), expected)


@pytest.mark.parametrize("shape", [(2, 2), (4, 4), (2, 6), (6, 4), (10, 10), (64, 8), (34, 4)])
def test_pack_unpack_round_trip(shape: tuple[int, int]) -> None:
    model = Ising2D.from_size(shape)
    layout = _packed.layout_for(model)
    assert layout is not None and shape[0] % layout.width == 0
    spins = model.random_states((3,), key=jax.random.key(1))
    black, white = _packed.pack(layout, spins)
    assert black.shape == (layout.block_rows, shape[1] // 2, 3) and black.dtype == jnp.uint32
    assert int(jnp.max(black | white)) <= layout.mask
    np.testing.assert_array_equal(_packed.unpack(layout, black, white), spins)
    # Bit t of word (r, j) of colour 0 is the spin at row t R + r, column 2j + (row % 2).
    x, j = 1 % shape[0], 0
    t, r = divmod(x, layout.block_rows)
    bit = (int(black[r, j, 0]) >> t) & 1
    assert bit == int(spins[0, x, 2 * j + x % 2] < 0)


def test_widths() -> None:
    assert [_packed.packed_width(n) for n in (2, 4, 10, 34, 64, 256, 74)] == [
        2,
        4,
        10,
        17,
        32,
        32,
        2,
    ]


def test_thresholds_are_p_to_24_bits() -> None:
    """Leading 8 bits and the next 16 (rounded): p within 2^-25 of what the kernel uses."""
    temps = np.array([0.01, 0.5, 1.0, 2.269185314, 10.0, 1e6, 1e300])
    for J in (1.0, -0.7):
        limits = _packed.thresholds(temps, J)
        assert limits.shape == (4, len(temps)) and limits.dtype == np.uint32
        for level, delta in enumerate((8.0, 4.0)):
            for t, T in enumerate(temps):
                lead, rest = int(limits[level, t]), int(limits[2 + level, t])
                assert lead < 2**8 and rest <= 2**16
                p = Fraction(float(np.exp(-delta * abs(J) / T)))
                used = Fraction(lead, 2**8) + Fraction(rest, 2**24)
                assert abs(used - p) <= Fraction(1, 2**25)


def test_error_bound() -> None:
    """The documented bound: rounding (2^-25) plus half the chance that a lane is one of
    more than four ties in its word (2^-8 C(31, 4) 2^-32 / 2), below 2^-24."""
    from math import comb

    tail = Fraction(comb(31, _packed.SPARE_LANES), 2 ** (8 + 8 * _packed.SPARE_LANES))
    assert Fraction(1, 2**25) + tail / 2 <= Fraction(_packed.PROBABILITY_ERROR) < Fraction(1, 2**24)


def test_bernoulli_lanes_is_the_obvious_rule_with_many_ties() -> None:
    """Crafted words: every lane's 8-bit uniform is p's leading bits or one off, so most
    lanes tie, many words have more than four ties, and every branch of the bit-sliced
    comparison runs; it must equal the site-by-site rule of the NumPy model."""
    rng = np.random.default_rng(3)
    n = 4000
    limits = _packed.thresholds(np.array([2.269185314, 1.2, 7.0, 3.3]), 1.0)
    limits = np.tile(limits, (1, n // 4)).astype(np.uint32)  # (4, n): per "chain"
    lanes = np.arange(32)
    high = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    low = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32) & ~high
    is_high = ((high[:, None] >> lanes) & 1).astype(bool)  # (n, 32)
    is_low = ((low[:, None] >> lanes) & 1).astype(bool)
    lead = np.where(is_high, limits[0][:, None], limits[1][:, None]).astype(np.int64)
    rest = np.where(is_high, limits[2][:, None], limits[3][:, None]).astype(np.int64)
    u8 = np.clip(lead + rng.choice([-1, 0, 0, 0, 1], size=lead.shape), 0, 255)
    words = [
        np.sum(((u8 >> (7 - i)) & 1).astype(np.uint64) << lanes.astype(np.uint64), axis=1).astype(
            np.uint32
        )
        for i in range(_packed.LEADING_BITS)
    ]
    words += [
        rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
        for _ in range(_packed.RANDOM_WORDS - _packed.LEADING_BITS)
    ]
    got = np.asarray(
        _packed.bernoulli_lanes(
            jnp.asarray(high),
            jnp.asarray(low),
            jnp.asarray(limits),
            [jnp.asarray(w) for w in words],
        )
    )
    got_bits = ((got[:, None] >> lanes) & 1).astype(bool)
    # The NumPy rule, with lanes on axis 1 and one word per row.
    expected = reference_decisions(
        (is_high | is_low), lead, rest, [w[:, None] for w in words], lanes[None, :]
    )
    ties = np.sum((is_high | is_low) & (u8 == lead), axis=1)
    assert np.sum(ties > _packed.SPARE_LANES) > 100  # the rare branch runs
    np.testing.assert_array_equal(got_bits, expected)


def test_bernoulli_lanes_probabilities_and_independence() -> None:
    """With Threefry words, each lane accepts with p (|z| < 4, 1.6e6 draws per lane and
    probability) and neighbouring lanes, and the same lane of neighbouring words, are
    uncorrelated (|z| < 4)."""
    temps = np.array([2.269185314])
    limits = jnp.asarray(_packed.thresholds(temps, 1.0))
    n, trials = 1 << 16, 25
    counters = jnp.arange(n, dtype=jnp.uint32)
    high = jnp.full((n,), 0x0000FFFF, jnp.uint32)  # 16 lanes at p_hi, 16 at p_lo
    low = jnp.full((n,), 0xFFFF0000, jnp.uint32)
    sums, pairs, downs = np.zeros(32), np.zeros(31), np.zeros(32)
    for trial in range(trials):
        k0, k1 = jnp.uint32(trial), jnp.uint32(99)
        words = []
        for i in range(_packed.RANDOM_WORDS // 2):
            words.extend(
                _packed.threefry2x32(
                    k0, k1, counters * (_packed.RANDOM_WORDS // 2) + i, jnp.uint32(0)
                )
            )
        got = np.asarray(_packed.bernoulli_lanes(high, low, limits, words))
        bits = ((got[:, None] >> np.arange(32)) & 1).astype(np.float64)
        sums += bits.sum(axis=0)
        pairs += (bits[:, :-1] * bits[:, 1:]).sum(axis=0)
        downs += (bits[:-1] * bits[1:]).sum(axis=0)
    draws = trials * n
    draws = 25 * n
    p = np.exp(-np.array([8.0] * 16 + [4.0] * 16) / temps[0])
    z = (sums / draws - p) / np.sqrt(p * (1 - p) / draws)
    assert np.all(np.abs(z) < 4), z
    q = p[:-1] * p[1:]
    z_pair = (pairs / draws - q) / np.sqrt(q * (1 - q) / draws)
    assert np.all(np.abs(z_pair) < 4), z_pair
    pairs_down = trials * (n - 1)
    z_down = (downs / pairs_down - p**2) / np.sqrt(p**2 * (1 - p**2) / pairs_down)
    assert np.all(np.abs(z_down) < 4), z_down


# --------------------------------------------------------------------------- which kernel


class HalfTemperatureRule(MetropolisRule):
    """Metropolis's rule at twice the temperature: a subclass of the built-in rule that
    changes what the packed kernel hard-codes."""

    name: ClassVar[str] = "test-packed-half-temperature"

    def log_acceptance(self, delta_e: jax.Array, temp: jax.Array) -> jax.Array:
        return -delta_e / (2.0 * temp)


class OtherColouring(Ising2D):
    def colouring(self) -> np.ndarray:
        return Ising1D.colouring(self)


class SameIsing2D(Ising2D):
    """A subclass that changes nothing; the sampler cannot tell it from one that changes the
    energy, so it runs the generic kernel."""


def test_the_packed_kernel_runs_ising2d_checkerboard_only() -> None:
    checkerboard = Metropolis(update="checkerboard")
    for size in ("4", "2x6", "10", "256", "6x4"):
        assert checkerboard.packed_layout(Ising2D.from_size(size)) is not None, size
    assert checkerboard.packed_layout(Ising2D.from_size("4", J=-1.0)) is not None
    assert checkerboard.packed_layout(Ising2D.from_size("3")) is None  # odd torus
    assert checkerboard.packed_layout(Ising2D.from_size("4x5")) is None
    assert checkerboard.packed_layout(Ising1D.from_size(6)) is None
    assert checkerboard.packed_layout(XY1D.from_size(6)) is None
    assert checkerboard.packed_layout(OtherColouring.from_size(4)) is None
    assert checkerboard.packed_layout(SameIsing2D.from_size(4)) is None
    model = Ising2D.from_size(4)
    assert Metropolis(update="random-site").packed_layout(model) is None
    assert Metropolis(update="checkerboard", rule=GlauberRule()).packed_layout(model) is None
    wrong = Metropolis(update="checkerboard", rule=HalfTemperatureRule())
    assert wrong.packed_layout(model) is None
    assert Metropolis(update="checkerboard", kernel="generic").packed_layout(model) is None
    # The state says which kernel runs.
    temps, key = np.array([1.0]), jax.random.key(0)
    assert isinstance(checkerboard.init_state(model, temps, key=key), PackedMetropolisState)
    assert isinstance(wrong.init_state(model, temps, key=key), MetropolisState)


@pytest.mark.parametrize(
    ("size", "J", "grid"),
    [
        ("4", 1.0, [1.0, 2.269, 5.0]),
        ("2x6", -0.7, [0.8, 3.0]),
        ("6x10", 1.0, [2.0]),
        ("10x4", 1.3, [1.5, 2.5]),
        ("34x2", 1.0, [2.3]),
    ],
)
def test_kernel_is_the_numpy_markov_chain_bit_for_bit(
    size: str, J: float, grid: list[float]
) -> None:
    """The sampler's chains equal the obvious NumPy chain exactly: the kernel runs (the
    generic one draws other words) and packs, neighbours and accepts correctly. The packed
    chains start from the generic kernel's configurations and keys."""
    model, temps = Ising2D.from_size(size, J=J), np.asarray(grid)
    sampler = Metropolis(chains=3, update="checkerboard")
    key = jax.random.key(11)
    state = sampler.init_state(model, temps, key=key)
    assert isinstance(state, PackedMetropolisState)
    generic = Metropolis(chains=3, update="checkerboard", kernel="generic")
    start = generic.init_state(model, temps, key=key)
    assert isinstance(start, MetropolisState)
    start_keys = np.asarray(jax.random.key_data(start.key))
    np.testing.assert_array_equal(np.asarray(sampler.measure(model, state)), start.spins)
    np.testing.assert_array_equal(key_words(state), start_keys)
    after = sampler.run_sweeps(model, temps, state, 5)
    assert isinstance(after, PackedMetropolisState)  # the chains stay packed between calls
    spins, keys, flips = reference_sweeps(model, temps, np.asarray(start.spins), start_keys, 5)
    np.testing.assert_array_equal(np.asarray(sampler.measure(model, after)), spins)
    np.testing.assert_array_equal(key_words(after), keys)
    np.testing.assert_array_equal(
        np.asarray(sampler.diagnostics(model, after)["acceptance"]), flips
    )


def test_new_stream_matches_the_old_one_statistically() -> None:
    """The bit-sliced stream (issue 17) and the old one (a 32-bit word per site) run the same
    Markov chain: from uniform random starts, after 3 sweeps (before equilibrium, where a
    wrong rule shows most), the joint histograms of energy and |magnetisation| of 6,000
    chains per temperature agree (two-sample χ², Fisher-combined p > 1e-3), and so do the
    flips of those sweeps (|z| < 4)."""
    model = Ising2D.from_size(4)
    temps = np.array([1.5, Ising2D.critical_temperature, 4.0])
    sampler = Metropolis(chains=6000, update="checkerboard")
    state = sampler.init_state(model, temps, key=jax.random.key(21))
    after = sampler.run_sweeps(model, temps, state, 3)
    new = np.asarray(sampler.measure(model, after))
    new_flips = np.asarray(sampler.diagnostics(model, after)["acceptance"])
    rng = np.random.default_rng(22)
    start = rng.choice(np.array([-1, 1], np.int8), size=(3, 6000, 4, 4))
    keys = rng.integers(0, 2**32, (3, 6000, 2), dtype=np.uint64).astype(np.uint32)
    old, old_flips = old_stream_sweeps(model, temps, start, keys, 3)
    pvalues = []
    for t in range(len(temps)):
        table = []
        for states in (new[t], old[t]):
            energy = np.rint(np.asarray(model.energy(jnp.asarray(states))))
            magnet = np.abs(states.reshape(len(states), -1).sum(axis=1))
            table.append(energy * 100 + magnet)
        categories = np.unique(np.concatenate(table))
        counts = np.array([[np.sum(row == c) for c in categories] for row in table])
        counts = counts[:, counts.sum(axis=0) >= 10]  # rare categories say nothing
        pvalues.append(scipy.stats.chi2_contingency(counts).pvalue)
        a, b = new_flips[t], old_flips[t].astype(np.float64)
        z = (a.mean() - b.mean()) / np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(z) < 4, (t, z)
    assert scipy.stats.combine_pvalues(pvalues, method="fisher").pvalue > 1e-3, pvalues


def test_acceptance_count_passes_two_to_the_31_without_wrapping() -> None:
    """One call of 33,000 sweeps of a 256x256 lattice at T = 1000 accepts about 2.15e9 flips,
    past the int32 range, which the counters used to wrap round; the acceptance it gives
    must equal that of the exact rule, min(1, exp(-ΔE/T)) averaged over the four ΔE levels."""
    model, temps = Ising2D.from_size(256), np.array([1000.0])
    sampler = Metropolis(chains=1, update="checkerboard")
    assert sampler.packed_layout(model) is not None
    sweeps = 33_000
    state = sampler.init_state(model, temps, key=jax.random.key(5))
    after = sampler.run_sweeps(model, temps, state, sweeps)
    accepted = float(sampler.diagnostics(model, after)["acceptance"][0, 0])
    assert accepted > 2**31
    # At T = 1000 the lattice is all but uncorrelated: k = 0..4 anti-aligned neighbours with
    # weights 1, 4, 6, 4, 1 (/16) and ΔE = 8, 4, 0, ... (correlations change this by ~1e-6;
    # the statistical error of 3e6 rejections is ~1e-6 too).
    T = float(temps[0])
    expected = 1 - (1 - np.exp(-8 / T)) / 16 - 4 * (1 - np.exp(-4 / T)) / 16
    rate = accepted / (sweeps * model.n_sites)
    assert abs(rate - expected) < 2e-5, (rate, expected)


def test_unrolled_sweeps_give_the_same_chain() -> None:
    """The GPU unroll (several sweeps per loop iteration) changes the program, not the chain:
    7 and 11 sweeps, whole iterations of 3 and a remainder, equal the plain loop's, which is
    what the sampler runs here."""
    model, temps = Ising2D.from_size("6x4"), np.array([1.5, 3.0])
    sampler = Metropolis(chains=2, update="checkerboard")
    state = sampler.init_state(model, temps, key=jax.random.key(3))
    assert isinstance(state, PackedMetropolisState)
    layout = _packed.layout_for(model)
    assert layout is not None and layout.unroll == 1 == state.layout.unroll
    limits = state.limits
    carry = (state.black, state.white, state.k0, state.k1, state.flips)
    sweeps = jax.jit(_packed.run_sweeps, static_argnums=0)
    for n in (7, 11):
        plain = sweeps(layout, limits, carry, jnp.int32(n))
        unrolled = sweeps(dataclasses.replace(layout, unroll=3), limits, carry, jnp.int32(n))
        for a, b in zip(plain, unrolled, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        after = sampler.run_sweeps(model, temps, state, n)
        for a, b in zip(plain, (after.black, after.white, after.k0, after.k1), strict=False):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        np.testing.assert_array_equal(np.asarray(plain[4]), np.asarray(after.flips))


def test_chunks_seeds_and_key_implementations() -> None:
    """The packed chains do not depend on how the sweeps are cut into calls (records one at
    a time or several, sample() runs of different lengths), for JAX's key implementations."""
    model, temps = Ising2D.from_size(4), np.array([1.0, 2.5])
    sampler = Metropolis(chains=3, warmup=5, sweeps=12, every=3, update="checkerboard")
    longer = Metropolis(chains=3, warmup=5, sweeps=180, every=3, update="checkerboard")
    for impl in ("threefry2x32", "rbg", "unsafe_rbg"):
        key = jax.random.key(5, impl=impl)
        first = sampler.sample(model, temps, key=key)
        again = sampler.sample(model, temps, key=key)
        np.testing.assert_array_equal(first.states, again.states)
        warm = sampler.run_sweeps(model, temps, sampler.init_state(model, temps, key=key), 5)
        assert isinstance(warm, PackedMetropolisState)
        single_state, single = record_in_pieces(sampler, model, temps, warm, [1, 1, 1, 1])
        odd_state, odd = record_in_pieces(sampler, model, temps, warm, [3, 1])
        np.testing.assert_array_equal(single, odd)
        assert_same_state(single_state, odd_state)
        np.testing.assert_array_equal(first.states, single)
        long = longer.sample(model, temps, key=key)  # measured 3 at a time
        np.testing.assert_array_equal(long.states[:, :, :4], first.states)
        other = sampler.sample(model, temps, key=jax.random.key(6, impl=impl))
        assert not np.array_equal(first.states, other.states)


# --------------------------------------------------------------------------- distribution


def chi2_pvalue(counts: np.ndarray, probabilities: np.ndarray) -> float:
    """Pearson χ² p-value, pooling the smallest bins until every bin expects at least 5."""
    expected = probabilities * counts.sum()
    order = np.argsort(expected)
    expected, counts = expected[order], counts[order].astype(float)
    cut = int(np.sum(expected < 5.0))
    while 0 < cut < len(expected) and expected[:cut].sum() < 5.0:
        cut += 1
    if cut:
        expected = np.concatenate([[expected[:cut].sum()], expected[cut:]])
        counts = np.concatenate([[counts[:cut].sum()], counts[cut:]])
    statistic = float(np.sum((counts - expected) ** 2 / expected))
    return float(scipy.stats.chi2.sf(statistic, len(expected) - 1))


def independent_draws(
    model: Ising2D, temps: np.ndarray, draws: int, seed: int, warmup: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """One configuration from each of ``draws`` independent chains per T after ``warmup + 1``
    sweeps ``(temps, draws, *lattice)``, and each chain's acceptance in its last sweep."""
    sampler = Metropolis(chains=draws, warmup=warmup, sweeps=1, every=1, update="checkerboard")
    assert sampler.packed_layout(model) is not None
    samples = sampler.sample(model, temps, key=jax.random.key(seed))
    return samples.states[:, :, 0], samples.info["acceptance"]


@pytest.mark.parametrize("J", [1.0, -0.5])
def test_chi2_against_exact_distribution(J: float) -> None:
    """χ² of independent draws against the Boltzmann distribution over all 65,536 states of
    the 4x4 torus (the rare ones pooled), low / critical / high T, combined by Fisher.

    (The 36 frozen states of this torus, which a checkerboard chain never reaches, carry at
    most 5.5e-4 of the distribution: far below what 8,000 draws resolve. On 2x4 they carry up
    to 1.6e-2, and supports() refuses it; see test_metropolis.py.)
    """
    model = Ising2D.from_size(4, J=J)
    temps = np.array([1.5, Ising2D.critical_temperature, 4.0]) * abs(J)
    states, _ = independent_draws(model, temps, 8000, seed=1)
    probabilities = np.exp(np.asarray(boltzmann_log_probabilities(model, temps), np.float64))
    pvalues = []
    for t in range(len(temps)):
        index = np.asarray(state_index(model, states[t]))
        counts = np.bincount(index, minlength=probabilities.shape[1])
        pvalues.append(chi2_pvalue(counts, probabilities[t]))
    combined = scipy.stats.combine_pvalues(np.maximum(pvalues, 1e-300), method="fisher").pvalue
    assert combined > 1e-3, pvalues


def test_chi2_detects_a_wrong_temperature() -> None:
    """The same test rejects draws made at 1.3 T: it has the power to see a wrong kernel."""
    model = Ising2D.from_size(4)
    temps = np.array([1.5, Ising2D.critical_temperature, 4.0])
    states, _ = independent_draws(model, 1.3 * temps, 8000, seed=1)
    probabilities = np.exp(np.asarray(boltzmann_log_probabilities(model, temps), np.float64))
    pvalues = [
        chi2_pvalue(
            np.bincount(
                np.asarray(state_index(model, states[t])), minlength=probabilities.shape[1]
            ),
            probabilities[t],
        )
        for t in range(len(temps))
    ]
    assert scipy.stats.combine_pvalues(np.maximum(pvalues, 1e-300), method="fisher").pvalue < 1e-6


def exact_acceptance(model: Ising2D, temps: np.ndarray) -> np.ndarray:
    """The Boltzmann mean over states and sites of min(1, exp(-ΔE/T)), per temperature."""
    configurations = jnp.asarray(enumerate_states(model))
    delta = np.asarray(model.delta_energy(configurations, -configurations), np.float64)
    delta = delta.reshape(len(delta), -1)
    probabilities = np.exp(np.asarray(boltzmann_log_probabilities(model, temps), np.float64))
    return np.array(
        [
            np.sum(p * np.mean(np.minimum(1.0, np.exp(-delta / T)), axis=1))
            for p, T in zip(probabilities, temps, strict=True)
        ]
    )


def test_acceptance_rate_is_exact_at_equilibrium() -> None:
    """The counted acceptance equals the exact Boltzmann mean of min(1, exp(-ΔE/T)) over
    sites (each colour's update keeps the distribution), within |z| < 4."""
    model, temps = Ising2D.from_size(4), np.array([1.5, Ising2D.critical_temperature, 4.0])
    expected = exact_acceptance(model, temps)
    _, acceptance = independent_draws(model, temps, 8000, seed=2)
    measured = acceptance.mean(axis=1)
    stderr = acceptance.std(axis=1, ddof=1) / np.sqrt(acceptance.shape[1])
    z = np.abs(measured - expected) / stderr
    assert np.all(z < 4), (measured, expected, z)


@pytest.mark.parametrize("rule", _c_reference.RULES)
def test_c_reference_accepts_at_the_exact_rate(rule: str) -> None:
    """The C reference of ``spinbench bench`` runs the same Markov chain: its acceptance at
    equilibrium on 4,000 4x4 tori at T_c is the exact one (|z| < 4 over 20 calls of 5
    sweeps). Skipped where no C compiler is found."""
    binary, why = _c_reference.build()
    if binary is None:
        pytest.skip(why)
    model, T = Ising2D.from_size(4), Ising2D.critical_temperature
    expected = float(exact_acceptance(model, np.array([T]))[0])
    program = _c_reference.CReference(binary, 4, 4000, 1.0 / T, rule, seed=3)
    try:
        program.run(200)
        rates = [program.run(5)[1] / (5 * 16 * 4000) for _ in range(20)]
    finally:
        program.close()
    z = (np.mean(rates) - expected) / (np.std(rates, ddof=1) / np.sqrt(len(rates)))
    assert abs(z) < 4, (np.mean(rates), expected, z)


# --------------------------------------------------------------------------- spinbench bench


def test_bench_command_reports_every_kernel_against_the_reference() -> None:
    result = CliRunner().invoke(main, ["bench", "--quick", "--repeats", "1", "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    names = {r["implementation"] for r in records}
    expected = {
        "plain NumPy checkerboard",
        "spinbench checkerboard",
        "spinbench checkerboard (generic)",
        "spinbench random-site",
    }
    if _c_reference.build()[0] is not None:
        expected |= set(_throughput.C_NAMES.values())
        assert "C reference: built with" in result.stderr
    else:
        assert "C reference skipped" in result.stderr
    assert names == expected
    for record in records:
        assert record["flips_per_ns"] > 0 and record["device"]
        if record["implementation"] == "plain NumPy checkerboard":
            assert record["ratio"] == 1
        if record["implementation"] == "C multi-spin (bit-sliced)":
            assert record["vs_c"] == 1


def test_bench_without_a_compiler_skips_the_c_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_c_reference, "compiler", lambda: None)
    result = CliRunner().invoke(
        main, ["bench", "--quick", "--repeats", "1", "--no-generic", "--no-random-site"]
    )
    assert result.exit_code == 0, result.output
    assert "C reference skipped: no C compiler found" in result.stderr
    assert "C multi-spin" not in result.stdout and "spinbench checkerboard" in result.stdout
