"""Issues 7 and 17's checks for a lent GPU, in one script of about five minutes that prints a
table last.

    PYTHONPATH=. python benchmarks/device_check.py [--paper] [--repeats 5]

It installs nothing and runs on JAX's default device (on a CPU it runs too, as a rehearsal).
In order:

1. **Same chain on the device as on the CPU.** The multi-spin-coded kernel's arithmetic
   (Threefry words, bit-sliced acceptance) is exact integer arithmetic, so 20 sweeps of a
   64x32 torus (three temperatures x four chains) must give the same spins, keys and
   acceptance counts on both, bit for bit. Then the bit-sliced decisions on the device:
   each of 32 lanes accepts with its probability (|z| < 4 over 1.6 million words).
2. **Metropolis throughput**, ``spinbench bench``'s cases for the device (on a GPU: one
   16384² lattice, one 4096² lattice, 400 lattices of 10x10 for 2000 sweeps), against the
   plain reference timed in the same process.
3. **Training**: milliseconds per Adam step of the paper's Ising2D 10x10 conv-VAE cell (nine
   temperatures, batch 500, all in one program), compilation excluded, and the 2,000 steps
   of the cell extrapolated from it.
4. With ``--paper``: the whole ``paper`` preset (the README's main job), wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time

import jax
import numpy as np


def same_chain_everywhere() -> str:
    """'same' when the device's packed kernel repeats the CPU's chain bit for bit."""
    from spinbench.models import Ising2D
    from spinbench.samplers import Metropolis

    model, temps = Ising2D.from_size("64x32"), np.array([1.5, 2.269185314, 3.0])
    sampler = Metropolis(chains=4, update="checkerboard")
    assert sampler.packed_layout(model) is not None
    try:
        cpu = jax.devices("cpu")[0]
    except RuntimeError:  # JAX_PLATFORMS names the accelerator only
        return "skipped (no CPU backend: leave JAX_PLATFORMS unset)"
    results = []
    for device in (jax.devices()[0], cpu):
        with jax.default_device(device):
            state = sampler.init_state(model, temps, key=jax.random.key(7))
            after = sampler.run_sweeps(model, temps, state, 20)
            results.append([np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(after)])
    same = all(np.array_equal(a, b) for a, b in zip(*results, strict=True))
    return "same" if same else "DIFFERENT"


def bit_sliced_lanes() -> str:
    """Largest |z| of the 32 lanes' acceptance frequencies against p on the device."""
    import jax.numpy as jnp

    from spinbench.samplers import _packed

    temp = 2.269185314
    limits = jnp.asarray(_packed.thresholds(np.array([temp]), 1.0))
    n, trials = 1 << 16, 25
    counters = jnp.arange(n, dtype=jnp.uint32)
    high = jnp.full((n,), 0x0000FFFF, jnp.uint32)
    low = jnp.full((n,), 0xFFFF0000, jnp.uint32)
    sums = np.zeros(32)
    for trial in range(trials):
        words = []
        for i in range(_packed.RANDOM_WORDS // 2):
            words.extend(
                _packed.threefry2x32(
                    jnp.uint32(trial),
                    jnp.uint32(7),
                    counters * (_packed.RANDOM_WORDS // 2) + i,
                    jnp.uint32(0),
                )
            )
        got = np.asarray(_packed.bernoulli_lanes(high, low, limits, words))
        sums += ((got[:, None] >> np.arange(32)) & 1).sum(axis=0)
    p = np.exp(-np.array([8.0] * 16 + [4.0] * 16) / temp)
    z = (sums / (trials * n) - p) / np.sqrt(p * (1 - p) / (trials * n))
    worst = float(np.max(np.abs(z)))
    return f"max |z| {worst:.2f} ({'ok' if worst < 4 else 'WRONG'})"


def training_step_ms(repeats: int) -> tuple[float, float]:
    """(ms per step, final mean loss) of the paper's 2D conv-VAE cell on random spins."""
    from spinbench.generators import VAE, TrainConfig, encode_spins, train
    from spinbench.models import Ising2D

    model, n_temps = Ising2D.from_size(10), 9
    generator = VAE()
    key = jax.random.key(0)
    params = generator.init(model, n_temps, key=key)
    states = np.random.default_rng(0).choice(np.array([-1, 1], np.int8), (n_temps, 10000, 10, 10))
    features = encode_spins(model, states)
    objective = generator.objective(model)
    config = TrainConfig(epochs=2, batch_size=500, chunks=1, progress=False)
    result = train(objective, params, features, config, key=key)  # compiles
    jax.block_until_ready(result.params)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = train(objective, params, features, config, key=key)
        jax.block_until_ready(result.params)
        seconds.append(time.perf_counter() - start)
    steps = result.epochs_run * result.steps_per_epoch
    return 1000 * float(np.median(seconds)) / steps, float(np.nanmean(result.history["loss"]))


def paper_preset_seconds() -> float:
    from spinbench.runner import Runner, load_preset

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        Runner(load_preset("paper"), out, progress=False).run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper", action="store_true", help="also run the whole paper preset")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    needed = ["equinox", "optax", "jaxtyping", "scipy", "pandas", "pluggy", "click", "tqdm"]
    needed += ["matplotlib"] if args.paper else []  # the run's report draws figures
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"missing on this machine: {', '.join(missing)} (spinbench's dependencies), and the "
            "device cannot reach the network. A pure-Python one can travel as a wheel put on "
            "PYTHONPATH (zip import), e.g. PYTHONPATH=.:wheels/tqdm-4.67.1-py3-none-any.whl; "
            "without matplotlib, leave out --paper."
        )

    from spinbench._throughput import machine, run_benchmarks

    where = machine()
    print(f"device: {where}; jax {jax.__version__}", flush=True)
    rows: list[tuple[str, str]] = []
    rows.append(("packed kernel, device vs CPU, 20 sweeps", same_chain_everywhere()))
    print(rows[-1], flush=True)
    rows.append(("bit-sliced acceptance, 32 lanes vs p", bit_sliced_lanes()))
    print(rows[-1], flush=True)
    for record in run_benchmarks(repeats=args.repeats, random_site=False, generic=False):
        label = f"{record['case']}, {record['implementation']}"
        rows.append((label, f"{record['flips_per_ns']:.3g} flips/ns (x{record['ratio']:.3g})"))
        print(rows[-1], flush=True)
    ms, loss = training_step_ms(args.repeats)
    rows.append(("conv VAE 10x10, 9 temps x batch 500, per step", f"{ms:.1f} ms (loss {loss:.4g})"))
    rows.append(("  -> the paper's 2D VAE cell, 2000 steps", f"{2000 * ms / 1000:.0f} s"))
    print(rows[-2:], flush=True)
    if args.paper:
        rows.append(("paper preset end to end", f"{paper_preset_seconds():.0f} s"))
    width = max(len(name) for name, _ in rows)
    print(f"\n{where}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
