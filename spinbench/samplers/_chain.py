"""The chain sampler base: one sampling loop for every Markov chain Monte Carlo method.

A chain sampler provides four pieces, each a pure function of a *state* pytree of every chain
at every temperature (a leading ``(temps, chains)`` batch, or any layout it likes):

* :meth:`AbstractChainSampler.init_state` (on the host): the chains' start and their keys;
* :meth:`AbstractChainSampler.advance` (traced): ``n_sweeps`` sweeps of every chain, the count
  a traced integer, so any count reuses one compiled program;
* :meth:`AbstractChainSampler.measure` (traced): the current configurations
  ``(temps, chains, *lattice)`` in the model's dtype;
* optionally :meth:`AbstractChainSampler.diagnostics` and
  :meth:`AbstractChainSampler.reset_diagnostics`: per-chain counts (accepted moves, flipped
  spins) since the last reset.

The base owns everything else, so a new sampler is a screenful: the run-length options
(``chains``, ``warmup``, ``sweeps``, ``every``) and their checks, the temperature checks and
``supports()``, the memory check, warm-up, measurement in jitted chunks with a progress bar,
the per-chain diagnostics (reported per site and measured sweep in ``Samples.info``), the
provenance and the :class:`~spinbench.Samples`. A chunk is one ``eqx.filter_jit`` program:
``advance`` then, ``n`` times, ``advance(every)`` and ``measure`` into a buffer, vectorised over
temperatures and chains. The same seed gives the same samples however the run is cut into
chunks, as long as ``advance`` draws its random numbers from per-chain keys sweep by sweep.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import operator
import sys
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree, Shaped

from .._errors import ResourceError, UnsupportedModelError
from .._plain import plain
from .._resources import memory_problem, sampler_memory
from .._samples import Samples
from ..models._base import AbstractModel
from ..provenance import provenance
from ..temperatures import check_temperatures
from ._base import AbstractSampler

__all__ = ["TARGET_CHUNKS", "AbstractChainSampler", "as_count"]

#: The measured sweeps run in about this many jitted chunks (one progress-bar step each).
TARGET_CHUNKS = 20


def as_count(value: Any) -> Any:
    """Integral values (numpy ints too) as ``int``; anything else is left for the checks to
    name (a converter for run-length fields)."""
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def _chunk_size(n_samples: int, target: int = TARGET_CHUNKS) -> int:
    """Measurements per chunk: the largest divisor of ``n_samples`` giving >= ``target`` chunks
    (so that every chunk has the same size and one compiled program serves them all)."""
    limit = max(1, n_samples // target)
    return max(d for d in range(1, limit + 1) if n_samples % d == 0)


class AbstractChainSampler(AbstractSampler):
    """A Markov chain sampler run by the shared loop (see the module docstring).

    A subclass declares the four run-length fields (with ``converter=as_count``) beside its
    own options, and provides ``name``, :meth:`init_state`, :meth:`advance` and
    :meth:`measure`. ``chains`` chains per temperature, ``warmup`` sweeps, then ``sweeps``
    sweeps with a measurement after every ``every``: ``sweeps // every`` configurations per
    chain (trailing sweeps that would end in no measurement are not run).
    """

    chains: eqx.AbstractVar[int]
    warmup: eqx.AbstractVar[int]
    sweeps: eqx.AbstractVar[int]
    every: eqx.AbstractVar[int]

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

    @property
    def n_samples(self) -> int:
        """Configurations per chain: ``sweeps // every``."""
        return self.sweeps // self.every

    # ------------------------------------------------------------------ what a subclass gives
    @abc.abstractmethod
    def init_state(self, model: AbstractModel, temps: np.ndarray, *, key: PRNGKeyArray) -> PyTree:
        """The chains' start: ``chains`` chains at each temperature of ``temps`` (float64, on
        the host), with their keys and counters."""

    @abc.abstractmethod
    def advance(
        self,
        model: AbstractModel,
        temps: Float[Array, " temps"],
        state: PyTree,
        n_sweeps: Int[Array, ""],
    ) -> PyTree:
        """``n_sweeps`` sweeps of every chain (traced: runs inside the loop's jitted program;
        ``temps`` are float32)."""

    @abc.abstractmethod
    def measure(
        self, model: AbstractModel, state: PyTree
    ) -> Shaped[Array, "temps chains *lattice"]:
        """The chains' current configurations, in the model's dtype (traced)."""

    def wide_vectors(self, model: AbstractModel) -> bool:
        """Whether the loop's programs on a CPU should prefer 512-bit vectors (XLA's
        ``xla_cpu_prefer_vector_width``; 256 by default). A compiler setting, not another
        code path: for integer kernels that measured faster with it (Metropolis's packed
        Ising kernel); other devices ignore it."""
        return False

    def diagnostics(self, model: AbstractModel, state: PyTree) -> dict[str, Array]:
        """Per-chain counts ``(temps, chains)`` since the last reset, e.g. accepted moves; the
        loop reports each as its total per site and measured sweep (traced)."""
        return {}

    def reset_diagnostics(self, state: PyTree) -> PyTree:
        """``state`` with the counters of :meth:`diagnostics` at zero (traced)."""
        return state

    # ------------------------------------------------------------------ the loop
    def sample(
        self,
        model: AbstractModel,
        temps: np.ndarray,
        *,
        key: PRNGKeyArray,
        seed: int | None = None,
        progress: bool | None = None,
    ) -> Samples:
        """Sample ``model`` at ``temps``: states ``(temps, chains, sweeps // every, *lattice)``.

        ``progress``: True shows a bar on stderr, False hides it, None shows it on a terminal.
        ``seed`` is only recorded (the randomness comes from ``key``).
        """
        from tqdm.auto import tqdm

        temps = np.asarray(check_temperatures(temps), np.float64)
        problem = self.supports(model)
        if problem is not None:
            raise UnsupportedModelError(f"{self.name} cannot sample {model.name}: {problem}")
        too_big = memory_problem(
            sampler_memory(self, model, len(temps)), f"{self.name} on {model.name} {model.size}"
        )
        if too_big is not None:
            raise ResourceError(too_big)
        n_samples = self.n_samples
        chunk = _chunk_size(n_samples)
        states = np.empty(
            (len(temps), self.chains, n_samples, *model.shape), dtype=np.dtype(model.dtype)
        )
        totals: dict[str, np.ndarray] = {}
        state = self.init_state(model, temps, key=key)
        disable = (not sys.stderr.isatty()) if progress is None else not progress
        with tqdm(
            total=self.warmup + n_samples * self.every,
            unit="sweep",
            desc=f"{self.name} {model.name} {model.size}",
            disable=disable,
            file=sys.stderr,
            leave=False,
        ) as bar:
            kernel, device_temps = self._kernel(), _device_temps(temps)
            done = 0
            while done < self.warmup:  # warm-up pieces of about one chunk's sweeps
                step = min(chunk * self.every, self.warmup - done)
                # the measured chunks' program (same buffer size), with no measurement
                state, _ = self._program(model)(
                    kernel, model, device_temps, state, step, 0, 0, chunk
                )
                jax.block_until_ready(state)
                done += step
                bar.update(step)
            state = self._reset(state)
            start = 0
            while start < n_samples:
                state, measured = self.record(model, temps, state, chunk)
                states[:, :, start : start + chunk] = np.asarray(measured)
                for name, value in self._counts(model, state).items():
                    totals[name] = totals.get(name, 0.0) + np.asarray(value, np.float64)
                state = self._reset(state)
                start += chunk
                bar.update(chunk * self.every)
        measured_sweeps = n_samples * self.every * model.n_sites
        info = {name: total / measured_sweeps for name, total in totals.items()}
        settings = self.settings()
        return Samples(
            states=states,
            temps=temps,
            model=model.describe(),
            method=self.name,
            settings=settings,
            seed=seed,
            info=info,
            provenance=provenance(seed=seed, settings=settings, packages=self._packages()),
        )

    def run_sweeps(
        self, model: AbstractModel, temps: np.ndarray, state: PyTree, n_sweeps: int
    ) -> PyTree:
        """``n_sweeps`` sweeps of every chain without measuring (warm-up, benchmarks), waiting
        for the result; any count reuses one compiled program."""
        state, _ = self._program(model)(
            self._kernel(), model, _device_temps(temps), state, n_sweeps, 0, 0, 0
        )
        jax.block_until_ready(state)
        return state

    def record(
        self, model: AbstractModel, temps: np.ndarray, state: PyTree, n_records: int
    ) -> tuple[PyTree, Shaped[Array, "temps chains samples *lattice"]]:
        """``n_records`` times: ``every`` sweeps, then measure. Returns the state and the
        configurations ``(temps, chains, n_records, *lattice)``."""
        return self._program(model)(
            self._kernel(),
            model,
            _device_temps(temps),
            state,
            0,
            self.every,
            n_records,
            int(n_records),
        )

    # ------------------------------------------------------------------ helpers
    def _kernel(self) -> AbstractChainSampler:
        """This sampler with the run's length set aside, so that runs differing only in their
        length share one compiled program (cached: making it costs more than a small call;
        a sampler with unhashable fields makes it each time)."""
        try:
            return _kernel_of(self)
        except TypeError:
            return dataclasses.replace(self, chains=1, warmup=0, sweeps=1, every=1)

    def _program(self, model: AbstractModel) -> Any:
        """The jitted chunk program: with 512-bit vectors on a CPU where
        :meth:`wide_vectors` asks for them."""
        if jax.default_backend() == "cpu" and self.wide_vectors(model):
            return _chunk_wide
        return _chunk

    def _reset(self, state: PyTree) -> PyTree:
        return _reset(self._kernel(), state)

    def _counts(self, model: AbstractModel, state: PyTree) -> dict[str, Array]:
        return _counts(self._kernel(), model, state)

    def _packages(self) -> tuple[str, ...]:
        """Distributions whose versions the provenance records besides spinbench's: the one
        that provides this sampler (a plugin's)."""
        module = type(self).__module__.split(".")[0]
        return () if module == "spinbench" else (module.replace("_", "-"),)


@functools.lru_cache(maxsize=256)
def _kernel_of(sampler: AbstractChainSampler) -> AbstractChainSampler:
    return dataclasses.replace(sampler, chains=1, warmup=0, sweeps=1, every=1)


def _device_temps(temps: Any) -> Float[Array, " temps"]:
    """The temperatures as float32 on the device, cached by value (a call of a few sweeps of
    a small lattice costs less than making the array again)."""
    values = np.asarray(temps, np.float64)
    device = str(getattr(jax.config, "jax_default_device", None))  # per default device
    return _device_temps_of(values.tobytes(), values.shape, device)


@functools.lru_cache(maxsize=256)
def _device_temps_of(data: bytes, shape: tuple[int, ...], device: str) -> Float[Array, " temps"]:
    return jnp.asarray(np.frombuffer(data, np.float64).reshape(shape), jnp.float32)


@eqx.filter_jit
def _reset(kernel: AbstractChainSampler, state: PyTree) -> PyTree:
    return kernel.reset_diagnostics(state)


@eqx.filter_jit
def _counts(kernel: AbstractChainSampler, model: AbstractModel, state: PyTree) -> dict[str, Array]:
    return kernel.diagnostics(model, state)


def _chunk_program(
    kernel: AbstractChainSampler,
    model: AbstractModel,
    temps: Float[Array, " temps"],
    state: PyTree,
    pre_sweeps: Int[Array, ""] | int,
    every: Int[Array, ""] | int,
    n_records: Int[Array, ""] | int,
    buffer_size: int,
) -> tuple[PyTree, Shaped[Array, "temps chains buffer *lattice"]]:
    """``pre_sweeps`` sweeps, then ``n_records`` times (``every`` sweeps, measure), in one
    program. The counts are traced and the buffer has a fixed ``buffer_size``
    (>= ``n_records``), so warm-up pieces and measured chunks of one size share programs."""
    pre, every_, n = (jnp.asarray(x, jnp.int32) for x in (pre_sweeps, every, n_records))
    state = kernel.advance(model, temps, state, pre)
    shape = jax.eval_shape(lambda s: kernel.measure(model, s), state)
    buffer = jnp.zeros((buffer_size, *shape.shape), shape.dtype)
    if buffer_size:

        def one(i: Int[Array, ""], carry: tuple[PyTree, Array]) -> tuple[PyTree, Array]:
            state, buffer = carry
            state = kernel.advance(model, temps, state, every_)
            return state, buffer.at[i].set(kernel.measure(model, state))

        state, buffer = lax.fori_loop(0, n, one, (state, buffer))
    return state, jnp.moveaxis(buffer, 0, 2)


_chunk = eqx.filter_jit(_chunk_program)
#: The same program compiled for 512-bit vectors (CPU; see ``wide_vectors``).
_chunk_wide = eqx.filter_jit(  # type: ignore[call-overload]  # jit keywords pass through
    _chunk_program, compiler_options={"xla_cpu_prefer_vector_width": 512}
)
