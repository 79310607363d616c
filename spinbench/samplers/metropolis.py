"""Metropolis sampling of any model that gives its local energy change.

The sampler is an immutable configuration (:class:`Metropolis`); the chains' state
(configurations, one key per chain, acceptance counters) is a separate pytree
(:class:`MetropolisState`) advanced functionally. One jitted program runs every temperature and
chain: ``jax.vmap`` over temperatures and chains, ``lax.scan``/``fori_loop`` over sweeps. Two
update schemes:

* ``"random-site"`` (the paper's procedure, the default): each step picks a uniformly random
  site, proposes a new spin with ``model.propose`` and accepts with probability
  ``min(1, exp(-dE/T))`` using ``model.site_delta_energy``; a sweep is ``n_sites`` steps.
* ``"checkerboard"``: for each colour of ``model.colouring()`` in turn, every site of that colour
  is updated at once (its neighbours have other colours, so the updates are independent); a
  sweep is one pass over all colours, ``n_sites`` attempted updates. For the built-in Ising2D
  on an even torus a specialised kernel runs the same update (the same acceptance
  probabilities, rounded up by less than 2^-32; :mod:`.fast_ising`: sublattices, 32 spins per
  word, integer acceptance, counter-mode Threefry); every other model, and subclasses that
  change the rule, get the generic kernel below.

The generic kernels accept when ``log(u) < -dE/T`` with ``u`` uniform in (0, 1]: the min(1, exp)
rule without overflow. Each chain has its own key; every sweep draws its random numbers and the
chain's next key from it in one call, so the samples do not depend on how the sweeps are divided
into jitted chunks (for the progress bar), and one seed on one device gives identical samples.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import operator
import sys
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray, Shaped

from .._plain import plain
from ..models.base import AbstractModel
from ..provenance import provenance
from ..samples import Samples
from . import fast_ising
from .base import AbstractSampler

UPDATES = ("random-site", "checkerboard")

#: The measured sweeps are run in about this many jitted chunks (one progress-bar step each).
TARGET_CHUNKS = 20


def _as_int(value: Any) -> Any:
    """Integral values (also numpy ints) as ``int``; anything else is left for validation."""
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def _as_width(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class MetropolisState(eqx.Module):
    """The chains of one run: configurations, one key per chain, accepted-update counters.

    ``accepted`` counts accepted single-site updates since the counters were last reset
    (:meth:`Metropolis.sample` resets them after every chunk). The counts are exact integers
    per sweep (generic kernel) or per 32-spin word over a call (packed kernel), totalled in
    float32: exact up to 2^24 per chain, beyond that within a relative 2^-24 per addition,
    instead of wrapping round as an int32 would (a few sweeps of 16384^2 pass 2^31).
    """

    spins: Shaped[Array, "temps chains *lattice"]
    key: PRNGKeyArray  # shape (temps, chains)
    accepted: Float[Array, "temps chains"]


#: Largest number of states over which :func:`checkerboard_trap` counts frozen configurations.
FROZEN_ENUMERATION_MAX_STATES = 2**20
#: Largest share of the Boltzmann distribution a checkerboard chain may be unable to reach.
MISSED_MASS_LIMIT = 1e-3


def _zero_tolerance(model: AbstractModel) -> float:
    """ΔE below this is 0 (float32 sums of bond terms of size |J|)."""
    return 1e-4 * abs(float(model.J))


def _two_valued(model: AbstractModel) -> bool:
    """Whether ``model``'s spins take exactly two values (what the checkerboard rules cover)."""
    return model.spin_values is not None and len(model.spin_values) == 2


def _flipped(model: AbstractModel, states: Array) -> Array:
    """``states`` with every two-valued spin turned to its other value."""
    assert model.spin_values is not None and _two_valued(model)
    down, up = model.spin_values
    return jnp.where(states == down, up, down).astype(states.dtype)


def frozen(model: AbstractModel, states: Array) -> Array:
    """True for each configuration ``(*batch, *shape)`` of two-valued spins in which every
    site's flip costs ΔE = 0. With two colours a checkerboard sweep of Metropolis flips then
    flips every site of each colour in turn, deterministically, and the chain cycles through
    two such states for ever (a colour's fields come only from the other colour, which all
    flipped); with more colours that need not happen."""
    delta = model.delta_energy(states, _flipped(model, states))
    axes = tuple(range(delta.ndim - len(model.shape), delta.ndim))
    return jnp.all(jnp.abs(delta) <= _zero_tolerance(model), axis=axes)


_FROZEN_SHARE: dict[AbstractModel, float] = {}


def frozen_share(model: AbstractModel) -> float | None:
    """The share of all configurations that are :func:`frozen`, by enumeration (None when the
    model has more than :data:`FROZEN_ENUMERATION_MAX_STATES` states or is not two-valued).

    It bounds the Boltzmann mass of the frozen configurations at every temperature for a
    zero-field model of pair interactions (the built-in Ising models; a plugin's two-valued
    model with a field or other terms is outside this argument): their energy is minus a
    quarter of the sum of the sites' ΔE, i.e. 0, and ``Z >= 2^N e^{-<E>/T} = 2^N`` by
    Jensen's inequality, the uniform mean energy being 0."""
    from ..exact.enumerate import enumerate_states, has_at_most_states

    if not _two_valued(model):
        return None
    if not has_at_most_states(model, FROZEN_ENUMERATION_MAX_STATES):
        return None
    try:
        known = _FROZEN_SHARE.get(model)  # models compare by their fields
    except TypeError:  # a model with unhashable fields: count every time
        known = None
    if known is None:
        states = jnp.asarray(enumerate_states(model))
        known = float(jnp.mean(frozen(model, states)))
        with contextlib.suppress(TypeError):
            _FROZEN_SHARE[model] = known
    return known


#: Largest number of states over which :func:`closed_classes` follows every sweep.
CLASS_ENUMERATION_MAX_STATES = 2**12


def closed_classes(model: AbstractModel) -> int | None:
    """How many closed classes the checkerboard chain of Metropolis flips has on ``model``
    (two-valued spins; None beyond :data:`CLASS_ENUMERATION_MAX_STATES` states).

    Which transitions are possible does not depend on the temperature (0 < T < inf): a site
    of the colour being updated flips for sure when its ΔE <= 0 and may or may not flip
    otherwise. A chain started anywhere ends in one closed class; with one, it samples the
    Boltzmann distribution from every start. (In float32 the generic kernel never makes an
    uphill flip with ΔE / T > 16.6, its smallest log-uniform, and refuses a ΔE = 0 flip with
    probability 2^-24; neither is modelled here.)"""
    import scipy.sparse
    import scipy.sparse.csgraph

    from ..exact.enumerate import enumerate_states, has_at_most_states

    if not _two_valued(model) or not has_at_most_states(model, CLASS_ENUMERATION_MAX_STATES):
        return None
    n, n_states = model.n_sites, 2**model.n_sites
    states = jnp.asarray(enumerate_states(model))
    delta = np.asarray(model.delta_energy(states, _flipped(model, states)))
    certain = delta.reshape(n_states, n) <= _zero_tolerance(model)
    colours = np.asarray(model.colouring()).reshape(-1)
    index = np.arange(n_states)
    sweep = scipy.sparse.identity(n_states, dtype=bool, format="csr")
    for colour in np.unique(colours):
        sites = np.flatnonzero(colours == colour)
        rows, cols = [], []
        for pattern in itertools.product((False, True), repeat=len(sites)):
            chosen = np.asarray(pattern)
            possible = np.all(chosen | ~certain[:, sites], axis=1)  # every sure flip is made
            bits = int(np.sum(1 << (n - 1 - sites[chosen])))  # site 0: most significant digit
            rows.append(index[possible])
            cols.append(index[possible] ^ bits)
        rows_, cols_ = np.concatenate(rows), np.concatenate(cols)
        half = scipy.sparse.csr_array(
            (np.ones(len(rows_), bool), (rows_, cols_)), shape=(n_states, n_states)
        )
        sweep = (sweep @ half).astype(bool)
    count, labels = scipy.sparse.csgraph.connected_components(
        sweep, directed=True, connection="strong"
    )
    edges = sweep.tocoo()
    leaving = np.zeros(count, bool)
    leaving[labels[edges.row][labels[edges.row] != labels[edges.col]]] = True
    return int(np.sum(~leaving))


def checkerboard_trap(model: AbstractModel) -> str | None:
    """Why a checkerboard chain of Metropolis flips cannot be trusted on ``model``, or None.

    A two-valued spin whose flip costs ΔE = 0 always flips, so half-sweeps move domain walls
    deterministically, and the chain of sweeps can split into classes it never leaves while
    keeping the Boltzmann distribution. What the exact sweep matrix shows
    (``tests/test_metropolis.py``, and a review's reachability counts up to the 4x4 torus):

    * periodic rings of N >= 3 split into large classes: for even N every wall hops to the
      other sublattice of bonds each half-sweep and walls are made or removed in (even, odd)
      pairs, so the difference of the numbers of walls on even and on odd bonds is conserved.
      Refused.
    * with more than two colours (odd rings, tori with an odd side) small lattices trap
      chains in other ways (two-state cycles on the 3x4 torus) while others mix (3x3, 2x3),
      and nothing bounds what is missed: lattices up to :data:`CLASS_ENUMERATION_MAX_STATES`
      states are accepted when :func:`closed_classes` finds one class, larger ones refused.
    * with two colours (2D tori with even sides, free chains) the only other classes found
      are two-state cycles of :func:`frozen` configurations, entered only from a start among
      them: the sampler never starts there (:meth:`Metropolis.init_state`), so it misses their
      Boltzmann mass, at most their share of all configurations (:func:`frozen_share`):
      36 / 2^16 = 5.5e-4 on the 4x4 torus but 4 / 2^8 = 1.6e-2 on 2x4. Refused where the
      share exceeds :data:`MISSED_MASS_LIMIT`; beyond :data:`FROZEN_ENUMERATION_MAX_STATES`
      states it is not counted (it falls about as 2^-N: 4 / 2^12 on 2x6, 4 / 2^16 on 2x8).
    """
    if not _two_valued(model):
        return None
    described = f"{model.name} {model.size} ({model.boundary})"
    if len(model.shape) == 1 and model.boundary == "periodic" and model.shape[0] >= 3:
        return (
            f"on the ring {described} the chain of sweeps splits into classes it never leaves "
            "(for even N the difference between the numbers of domain walls on even and on odd "
            "bonds is conserved)"
        )
    colours = int(np.max(np.asarray(model.colouring()))) + 1
    if colours > 2:
        classes = closed_classes(model)
        if classes is None:
            return (
                f"{described} needs {colours} colours; with more than two, two-valued spins can "
                "be trapped (two-state cycles on the 3x4 torus) and the lattice is too large "
                f"to check (more than {CLASS_ENUMERATION_MAX_STATES} states)"
            )
        if classes > 1:
            return f"on {described} the chain of sweeps has {classes} classes it never leaves"
        return None  # one class: every start reaches it (frozen states included)
    share = frozen_share(model)
    if share is not None and share > MISSED_MASS_LIMIT:
        return (
            f"on {described} {share:.2g} of all configurations have ΔE = 0 at every site; a "
            "chain never reaches them from elsewhere, and they can carry that share of the "
            f"Boltzmann distribution (more than {MISSED_MASS_LIMIT:g})"
        )
    return None


class Metropolis(AbstractSampler):
    """Single-spin Metropolis over a temperature grid, vectorised over temperatures and chains.

    The defaults are the paper's protocol: 20 chains per temperature from random starts,
    2000 warm-up sweeps, then 10,000 sweeps with a measurement every 20, i.e. 10,000
    configurations per temperature. A run makes ``sweeps // every`` measurements, one after
    every ``every`` sweeps (trailing sweeps that would end in no measurement are not run).
    ``width`` bounds the move of a continuous spin, ``theta + U(-width, width)``; None draws a
    new uniform angle. A model with discrete spins has no angle to step: :meth:`supports`
    refuses a width for it rather than ignore it.

    ``update="checkerboard"`` updates one colour of ``model.colouring()`` at a time, all its
    sites at once: the same stationary distribution, much faster, but :meth:`supports`
    refuses the lattices where that chain never mixes (see :func:`checkerboard_trap`).
    """

    name: ClassVar[str] = "metropolis"
    #: Whether specialised kernels (:mod:`.fast_ising`) may run; False keeps the generic one.
    _fast_kernels: ClassVar[bool] = True

    chains: int = eqx.field(static=True, default=20, converter=_as_int)
    warmup: int = eqx.field(static=True, default=2000, converter=_as_int)
    sweeps: int = eqx.field(static=True, default=10000, converter=_as_int)
    every: int = eqx.field(static=True, default=20, converter=_as_int)
    update: str = eqx.field(static=True, default="random-site")
    width: float | None = eqx.field(static=True, default=None, converter=_as_width)

    def __check_init__(self) -> None:
        for option in ("chains", "sweeps", "every"):
            value = getattr(self, option)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{option} must be a positive integer, got {plain(value)!r}")
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or self.warmup < 0:
            raise ValueError(f"warmup must be a non-negative integer, got {plain(self.warmup)!r}")
        if self.every > self.sweeps:
            raise ValueError(
                f"every={self.every} is larger than sweeps={self.sweeps}: no configuration "
                f"would be measured; give sweeps >= every"
            )
        if self.update not in UPDATES:
            raise ValueError(
                f"update {self.update!r} is not known; choose one of: {', '.join(UPDATES)}"
            )
        if self.width is not None and (
            not isinstance(self.width, float) or not math.isfinite(self.width) or self.width <= 0
        ):
            raise ValueError(f"width must be a positive number or None, got {plain(self.width)!r}")

    # ------------------------------------------------------------------ facts
    @property
    def n_samples(self) -> int:
        """Configurations per chain: ``sweeps // every``."""
        return self.sweeps // self.every

    def supports(self, model: AbstractModel) -> str | None:
        if self.width is not None and model.spin_values is not None:
            return (
                f"width is the angle step for continuous spins; {model.name} has discrete "
                "spins: leave width unset"
            )
        if self.update == "checkerboard":
            colours = np.asarray(model.colouring()).reshape(-1)
            table = model.neighbours()
            clash = (table >= 0) & (colours[np.where(table >= 0, table, 0)] == colours[:, None])
            clash &= table != np.arange(model.n_sites)[:, None]
            if clash.any():
                return f"{model.name}'s colouring() puts neighbouring sites in one colour"
            trap = checkerboard_trap(model)
            if trap is not None:
                return f"checkerboard updates cannot be trusted: {trap}; use update='random-site'"
        return None

    # ------------------------------------------------------------------ public entry points
    def init_state(
        self, model: AbstractModel, temps: Float[Array, " temps"] | np.ndarray, *, key: PRNGKeyArray
    ) -> MetropolisState:
        """Uniformly random configurations and independent keys for ``chains`` chains per T."""
        n_temps = int(np.shape(temps)[0])
        if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):  # a raw uint32 key
            key = jax.random.wrap_key_data(key)
        init_key, chain_key = jax.random.split(key)
        keys = jax.random.split(chain_key, n_temps * self.chains)
        keys = keys.reshape((n_temps, self.chains, *keys.shape[1:]))
        spins = model.random_states((n_temps, self.chains), key=init_key)
        if self.update == "checkerboard" and _two_valued(model):
            spins = _thaw(model, spins)
        return MetropolisState(spins, keys, jnp.zeros((n_temps, self.chains), jnp.float32))

    def advance(
        self,
        model: AbstractModel,
        temps: Float[Array, " temps"] | np.ndarray,
        state: MetropolisState,
        n_sweeps: int,
    ) -> MetropolisState:
        """Run ``n_sweeps`` sweeps of every chain without measuring (warm-up, benchmarks).

        The sweep count is traced, so any count reuses one compiled program.
        """
        state, _ = self._chunk(model, temps, state, n_sweeps, 0, buffer_size=0)
        return state

    def measure_chunk(
        self,
        model: AbstractModel,
        temps: Float[Array, " temps"] | np.ndarray,
        state: MetropolisState,
        n_samples: int,
    ) -> tuple[MetropolisState, Shaped[Array, "temps chains samples *lattice"]]:
        """Make ``n_samples`` measurements, each after ``every`` sweeps; return the states."""
        return self._chunk(model, temps, state, 0, n_samples, buffer_size=n_samples)

    def _chunk(
        self,
        model: AbstractModel,
        temps: Float[Array, " temps"] | np.ndarray,
        state: MetropolisState,
        pre_sweeps: int,
        n_records: int,
        *,
        buffer_size: int,
    ) -> tuple[MetropolisState, Shaped[Array, "temps chains buffer *lattice"]]:
        """``pre_sweeps`` sweeps, then ``n_records`` x (``every`` sweeps, record) in one call.

        Only the update rule reaches the compiled program (not the run's lengths or chain
        count), so runs that differ in those share it.
        """
        batch = int(np.prod(state.spins.shape[:2]))
        layout = self._fast_layout(model, batch, state.key)
        if layout is not None:
            host_temps = np.asarray(temps, np.float64)  # float64 thresholds: see fast_ising
            return _run_fast_chunk(
                layout,
                state,
                jnp.asarray(fast_ising.thresholds(host_temps, model.J)),
                jnp.int32(pre_sweeps),
                jnp.int32(self.every),
                jnp.int32(n_records),
                int(buffer_size),
            )
        kernel = dataclasses.replace(self, chains=1, warmup=0, sweeps=1, every=1)
        return _run_chunk(
            kernel,
            model,
            jnp.asarray(temps, jnp.float32),
            state,
            jnp.int32(pre_sweeps),
            jnp.int32(self.every),
            jnp.int32(n_records),
            int(buffer_size),
        )

    def _fast_layout(
        self, model: AbstractModel, batch: int = 1, key: PRNGKeyArray | None = None
    ) -> fast_ising.PackedLayout | None:
        """The layout of the multi-spin-coded kernel (:mod:`.fast_ising`) when it runs this
        sampler on ``model``, else None (the generic kernel runs).

        It runs the checkerboard update of the built-in Ising2D on an even torus, unless a
        subclass changes the acceptance rule or the sweep (the kernel hard-codes Metropolis's
        rule), so subclasses such as a heat-bath rule keep their own behaviour.
        """
        if self.update != "checkerboard" or not self._fast_kernels:
            return None
        cls = type(self)
        for name in ("_log_acceptance", "_sweep", "_sweep_checkerboard", "_advance_chain"):
            if getattr(cls, name) is not getattr(Metropolis, name):
                return None
        if key is not None and not fast_ising.supports_key(key):
            return None
        return fast_ising.layout_for(model, batch)

    def sample(
        self,
        model: AbstractModel,
        temps: np.ndarray,
        *,
        key: PRNGKeyArray,
        progress: bool | None = None,
        seed: int | None = None,
    ) -> Samples:
        """Sample ``model`` at ``temps``: states ``(temps, chains, sweeps // every, *lattice)``.

        ``progress``: True shows a bar on stderr, False hides it, None shows it on a terminal.
        ``seed`` is only recorded (the randomness comes from ``key``).
        """
        temps = _check_temps(temps)
        problem = self.supports(model)
        if problem is not None:
            raise ValueError(f"metropolis cannot sample {model.name}: {problem}")
        states, acceptance = self._run(model, temps, key=key, progress=progress)
        settings = self.settings()
        return Samples(
            states=states,
            temps=temps,
            model=model.describe(),
            method=self.name,
            settings=settings,
            seed=seed,
            info={"acceptance": acceptance},
            provenance=provenance(seed=seed, settings=settings),
        )

    # ------------------------------------------------------------------ the run
    def _run(
        self,
        model: AbstractModel,
        temps: np.ndarray,
        *,
        key: PRNGKeyArray,
        progress: bool | None = None,
        chunk: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Warm up, then measure in jitted chunks of ``chunk`` measurements (default: about
        :data:`TARGET_CHUNKS` equal chunks). Returns states (numpy) and acceptance rates.

        Only the measured configurations are kept, on the host; the chunking changes neither.
        """
        from tqdm.auto import tqdm

        n_samples = self.n_samples
        chunk = _chunk_size(n_samples) if chunk is None else int(chunk)
        chunk_sweeps = chunk * self.every
        disable = (not sys.stderr.isatty()) if progress is None else not progress
        states = np.empty(
            (len(temps), self.chains, n_samples, *model.shape), dtype=np.dtype(model.dtype)
        )
        accepted = np.zeros((len(temps), self.chains), np.float64)
        state = self.init_state(model, temps, key=key)
        with tqdm(
            total=self.warmup + n_samples * self.every,
            unit="sweep",
            desc=f"{self.name} {model.name} {model.size}",
            disable=disable,
            file=sys.stderr,
            leave=False,
        ) as bar:
            done = 0
            while done < self.warmup:  # warm-up pieces of about one chunk's sweeps
                step = min(chunk_sweeps, self.warmup - done)
                state, _ = self._chunk(model, temps, state, step, 0, buffer_size=chunk)
                state.spins.block_until_ready()
                done += step
                bar.update(step)
            state = _reset_counters(state)
            start = 0
            while start < n_samples:
                count = min(chunk, n_samples - start)
                state, measured = self._chunk(model, temps, state, 0, count, buffer_size=chunk)
                states[:, :, start : start + count] = np.asarray(measured[:, :, :count])
                accepted += np.asarray(state.accepted, np.float64)
                state = _reset_counters(state)
                start += count
                bar.update(count * self.every)
        acceptance = accepted / (n_samples * self.every * model.n_sites)
        return states, acceptance

    # ------------------------------------------------------------------ overridable pieces
    def _log_acceptance(
        self, delta_e: Float[Array, "*sites"], temp: Float[Array, ""]
    ) -> Float[Array, "*sites"]:
        """Log of the Metropolis acceptance ratio, ``-dE/T`` (accept when ``log u`` is below)."""
        return -delta_e / temp

    def _sweep(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        temp: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Shaped[Array, "*lattice"], Int[Array, ""], PRNGKeyArray]:
        """One sweep (``n_sites`` attempted updates) of one chain.

        Consumes the chain's ``key`` and returns the spins, the number of accepted updates and
        the key for the next sweep.
        """
        if self.update == "checkerboard":
            return self._sweep_checkerboard(model, spins, temp, key)
        return self._sweep_random_site(model, spins, temp, key)

    def _sweep_random_site(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        temp: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Shaped[Array, "*lattice"], Int[Array, ""], PRNGKeyArray]:
        """``n_sites`` single-site steps at uniformly random sites (the paper's procedure).

        The random numbers of the whole sweep come from one draw; the steps run in a scan.
        (Sites are 32 random bits modulo ``n_sites``: a site is visited with a bias below
        ``n_sites / 2**32``, which cannot bias the stationary distribution, since every
        single-site update keeps it whatever the site.)
        """
        n = model.n_sites
        key, words, proposal_key = _draw(key, 2 * n)
        sites = (words[:n] % jnp.uint32(n)).astype(jnp.int32)
        log_u = _log_uniform(words[n:])
        proposal_keys = jax.random.split(proposal_key, n)  # dropped if propose ignores keys

        def step(carry: tuple[Array, Array], x: tuple[Array, Array, Array]) -> tuple[Any, None]:
            flat, accepted = carry
            site, lu, proposal_key = x
            old = flat[site]
            new = model.propose(old, key=proposal_key, width=self.width)
            delta = model.site_delta_energy(flat.reshape(model.shape), site, new)
            accept = lu < self._log_acceptance(delta, temp)
            flat = flat.at[site].set(jnp.where(accept, new, old))
            return (flat, accepted + accept.astype(jnp.int32)), None

        init = (spins.reshape(n), jnp.zeros((), jnp.int32))
        (flat, accepted), _ = lax.scan(step, init, (sites, log_u, proposal_keys))
        return flat.reshape(spins.shape), accepted, key

    def _sweep_checkerboard(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        temp: Float[Array, ""],
        key: PRNGKeyArray,
    ) -> tuple[Shaped[Array, "*lattice"], Int[Array, ""], PRNGKeyArray]:
        """One pass over the colours of ``model.colouring()``, each colour updated at once.

        Sites of one colour are changed only by their own colour's update, so one proposal and
        one uniform per site, drawn at the start of the sweep, serve every colour.
        """
        n = model.n_sites
        colours = np.asarray(model.colouring()).reshape(spins.shape)
        key, words, proposal_key = _draw(key, n)
        log_u = _log_uniform(words).reshape(spins.shape)
        # Proposed flat: lattice-shaped threefry draws are several times slower on CPU.
        proposed = model.propose(spins.reshape(n), key=proposal_key, width=self.width)
        proposed = proposed.reshape(spins.shape)
        accepted = jnp.zeros((), jnp.int32)
        for colour in range(int(colours.max()) + 1):  # a few colours, unrolled when traced
            delta = model.delta_energy(spins, proposed)
            accept = (colours == colour) & (log_u < self._log_acceptance(delta, temp))
            spins = jnp.where(accept, proposed, spins)
            accepted = accepted + jnp.sum(accept, dtype=jnp.int32)
        return spins, accepted, key

    def _advance_chain(
        self,
        model: AbstractModel,
        spins: Shaped[Array, "*lattice"],
        key: PRNGKeyArray,
        accepted: Float[Array, ""],
        temp: Float[Array, ""],
        n_sweeps: Int[Array, ""] | int,
    ) -> tuple[Array, Array, Array]:
        """``n_sweeps`` sweeps of one chain, each consuming the key of the one before."""

        def body(_: Any, carry: tuple[Array, Array, Array]) -> tuple[Array, Array, Array]:
            spins, key, accepted = carry
            spins, count, key = self._sweep(model, spins, temp, key)
            return spins, key, accepted + count.astype(jnp.float32)

        return lax.fori_loop(0, n_sweeps, body, (spins, key, accepted))


def _thaw(model: AbstractModel, spins: Array) -> Array:
    """``spins`` with the first site flipped in every :func:`frozen` configuration.

    A checkerboard chain started in one would cycle between two frozen states for ever; with
    one site flipped, that site's neighbours feel a field and the start is an ordinary one."""
    batch = spins.shape[: spins.ndim - len(model.shape)]
    flat = spins.reshape(*batch, model.n_sites)
    first = jnp.where(frozen(model, spins), _flipped(model, flat[..., 0]), flat[..., 0])
    return flat.at[..., 0].set(first).reshape(spins.shape)


def _draw(key: PRNGKeyArray, n_words: int) -> tuple[PRNGKeyArray, Array, PRNGKeyArray]:
    """The successor of ``key``, ``n_words`` random uint32 words and one spare key, all from
    one call of the generator (the keys are random words, as ``jax.random.split`` makes them).

    One call per sweep keeps the compiled program small: every call site of the generator
    adds seconds of XLA compile time on CPU.
    """
    impl = jax.random.key_impl(key)
    width = int(jax.random.key_data(key).shape[-1])  # 2 for threefry
    words = jax.random.bits(key, (2 * width + n_words,), jnp.uint32)
    successor = jax.random.wrap_key_data(words[:width], impl=impl)
    spare = jax.random.wrap_key_data(words[width : 2 * width], impl=impl)
    return successor, words[2 * width :], spare


def _log_uniform(bits: Array) -> Float[Array, "..."]:
    """``log(1 - u)`` for ``u`` uniform on a 2**-24 grid in [0, 1): log of U(0, 1], finite."""
    return jnp.log1p(-(bits >> 8).astype(jnp.float32) * jnp.float32(2.0**-24))


def _check_temps(temps: Any) -> np.ndarray:
    """Temperatures as a float64 vector, all finite and > 0 (a clear error otherwise)."""
    from ..temperatures import check_temperatures

    return np.asarray(check_temperatures(temps), np.float64)


def _chunk_size(n_samples: int, target: int = TARGET_CHUNKS) -> int:
    """Measurements per chunk: the largest divisor of ``n_samples`` giving >= ``target`` chunks
    (so that every chunk has the same size and one compiled program serves them all)."""
    limit = max(1, n_samples // target)
    return max(d for d in range(1, limit + 1) if n_samples % d == 0)


def _reset_counters(state: MetropolisState) -> MetropolisState:
    return eqx.tree_at(lambda s: s.accepted, state, jnp.zeros_like(state.accepted))


@eqx.filter_jit
def _run_chunk(
    kernel: Metropolis,
    model: AbstractModel,
    temps: Float[Array, " temps"],
    state: MetropolisState,
    pre_sweeps: Int[Array, ""],
    every: Int[Array, ""],
    n_records: Int[Array, ""],
    buffer_size: int,
) -> tuple[MetropolisState, Shaped[Array, "temps chains buffer *lattice"]]:
    """``pre_sweeps`` sweeps, then ``n_records`` times (``every`` sweeps, record the spins).

    Every chain at every temperature in one program. The counts are traced and the record
    buffer has a fixed ``buffer_size`` (>= ``n_records``), so warm-up pieces, measured chunks
    and any sweep counts share one compiled program.
    """

    def chain(spins: Array, key: Array, accepted: Array, temp: Array) -> tuple[Array, ...]:
        carry = kernel._advance_chain(model, spins, key, accepted, temp, pre_sweeps)
        buffer = jnp.zeros((buffer_size, *spins.shape), spins.dtype)
        if buffer_size == 0:  # no measurements (warm-up, benchmarks)
            return (*carry, buffer)

        def record(i: Array, loop: tuple[Array, ...]) -> tuple[Array, ...]:
            spins, key, accepted, buffer = loop
            spins, key, accepted = kernel._advance_chain(model, spins, key, accepted, temp, every)
            return spins, key, accepted, buffer.at[i].set(spins)

        return lax.fori_loop(0, n_records, record, (*carry, buffer))

    over_chains = jax.vmap(chain, in_axes=(0, 0, 0, None))
    spins, keys, accepted, buffer = jax.vmap(over_chains)(
        state.spins, state.key, state.accepted, temps
    )
    return MetropolisState(spins, keys, accepted), buffer


@eqx.filter_jit
def _run_fast_chunk(
    layout: fast_ising.PackedLayout,
    state: MetropolisState,
    limits: Array,
    pre_sweeps: Int[Array, ""],
    every: Int[Array, ""],
    n_records: Int[Array, ""],
    buffer_size: int,
) -> tuple[MetropolisState, Shaped[Array, "temps chains buffer *lattice"]]:
    """:func:`_run_chunk` for the multi-spin-coded Ising kernel (one program per layout,
    batch shape and buffer size; the counts and thresholds are traced)."""
    spins, keys, accepted, buffer = fast_ising.run_chunk(
        layout,
        state.spins,
        state.key,
        state.accepted,
        limits,
        pre_sweeps,
        every,
        n_records,
        buffer_size,
    )
    return MetropolisState(spins, keys, accepted), buffer


def benchmark_sweeps(
    model: AbstractModel,
    temps: np.ndarray,
    n_sweeps: int,
    *,
    key: PRNGKeyArray,
    chains: int = 20,
    update: str = "random-site",
    width: float | None = None,
) -> MetropolisState:
    """Run ``n_sweeps`` sweeps without measuring and wait for the result (throughput tests).

    Call it once to compile; a second call with any ``n_sweeps`` reuses the program.
    """
    sampler = Metropolis(chains=chains, warmup=0, sweeps=1, every=1, update=update, width=width)
    temps = np.asarray(temps, np.float64)
    state = sampler.init_state(model, temps, key=key)
    state = sampler.advance(model, temps, state, n_sweeps)
    state.spins.block_until_ready()
    return state


__all__ = [
    "UPDATES",
    "Metropolis",
    "MetropolisState",
    "benchmark_sweeps",
    "checkerboard_trap",
    "closed_classes",
    "frozen",
    "frozen_share",
]
