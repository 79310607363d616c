"""Reconstructed rows (the paper's red markers): configurations passed through a trained network,
the ones it trained on and held-out ones, as table rows; the over-fitting gap measured."""

from __future__ import annotations

import math
import shutil
import types
from pathlib import Path
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import spinbench
from spinbench import GridError, UnsupportedModelError
from spinbench.generators import AVB, VAE, AbstractGenerator, TrainedGenerator
from spinbench.models import XY1D, Ising1D
from spinbench.runner import TIMING_COLUMNS, Runner, load_preset, make_plan, parse_grid
from spinbench.samplers import Metropolis

#: |z| below which two estimates agree (tests' tolerance, in standard errors).
Z_MAX = 4.0


class DecoderOnly(AbstractGenerator):
    """A generator without an encoder: it cannot reconstruct."""

    name: ClassVar[str] = "decoder-only"

    def init(self, model: Any, n_temps: int, *, key: Any) -> Any:
        return jnp.zeros((n_temps, 1))

    def fit(self, model: Any, data: Any, *, key: Any) -> TrainedGenerator:
        n = len(data.temps)
        return TrainedGenerator(
            generator=self,
            model=model,
            temps=np.asarray(data.temps, np.float64),
            params=self.init(model, n, key=key),
            history={"loss": np.zeros((n, 1))},
            diverged_step=np.full(n, -1),
        )

    def generate_states(self, model: Any, params: Any, n: int, *, key: Any) -> Any:
        return jnp.ones((params.shape[0], n, *model.shape), model.dtype)


def _reference(model: Any, temps: list[float]) -> spinbench.Samples:
    sampler = Metropolis(chains=2, warmup=50, sweeps=100, every=2)
    return sampler.sample(model, np.asarray(temps), key=jax.random.key(0), seed=0)


@pytest.mark.parametrize(
    ("generator", "model"),
    [
        (VAE(epochs=1, batch_size=50), Ising1D.from_size("6")),
        (AVB(epochs=1, batch_size=50), XY1D.from_size("6")),
    ],
    ids=lambda value: getattr(value, "name", None),
)
def test_reconstructions_keep_the_layout_and_the_spins_and_follow_the_key(
    generator: AbstractGenerator, model: Any
) -> None:
    data = _reference(model, [1.0, 2.5])
    trained = generator.fit(model, data, key=jax.random.key(1))
    assert generator.reconstruction_problem(model) is None
    first = trained.reconstruct(data, key=jax.random.key(2), method="x:reconstructed-train")
    again = trained.reconstruct(data, key=jax.random.key(2))
    other = trained.reconstruct(data, key=jax.random.key(3))
    assert first.states.shape == data.states.shape
    assert first.states.dtype == model.dtype
    assert first.method == "x:reconstructed-train" and again.method == generator.name
    np.testing.assert_array_equal(first.states, again.states)
    assert not np.array_equal(first.states, other.states)  # z is drawn from q(z|x)
    if model.spin_values is not None:
        assert set(np.unique(first.states)) <= {-1, 1}
    else:
        assert (first.states >= -math.pi).all() and (first.states < math.pi).all()


def test_a_generator_without_an_encoder_says_so() -> None:
    model = Ising1D.from_size("6")
    data = _reference(model, [1.0])
    trained = DecoderOnly().fit(model, data, key=jax.random.key(0))
    assert "has no encoder" in str(DecoderOnly().reconstruction_problem(model))
    with pytest.raises(UnsupportedModelError, match="has no encoder"):
        trained.reconstruct(data, key=jax.random.key(0))
    vae = VAE()
    untrained = TrainedGenerator(
        generator=vae,
        model=model,
        temps=np.asarray([1.0]),
        params=vae.init(model, 1, key=jax.random.key(0)),
        history={},
        diverged_step=np.full(1, -1),
    )
    with pytest.raises(ValueError, match="trained at"):
        untrained.reconstruct(_reference(model, [2.0]), key=jax.random.key(0))


# ---------------------------------------------------------------------------- grids
def _grid(method: str) -> str:
    return f"""
[[models]]
name = "ising1d"
size = "6"
temps = [1.0]

[[methods]]
name = "metropolis"

[[methods]]
{method}
"""


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ('name = "vae"\nreconstructed = "yes"', "must be true or false"),
        ('name = "vae"\nreconstructed = 1', "must be true or false"),
        (
            'name = "decoder-only"\nreconstructed = true',
            r"decoder-only cannot reconstruct .*: decoder-only has no encoder; "
            r"reconstructed = true needs a generator with an encoder "
            r"\(avb, dense-vae, vae on ising1d 6\)",
        ),
    ],
)
def test_bad_reconstructed_options_are_grid_errors(method: str, message: str) -> None:
    plugin = types.SimpleNamespace(
        spinbench_register_generators=spinbench.hookimpl(lambda: [DecoderOnly])
    )
    with (
        spinbench.plugins_registered(("reconstructed-tests", plugin)),
        pytest.raises(GridError, match=message),
    ):
        make_plan(parse_grid(_grid(method)))


def test_reconstructed_on_a_sampler_is_a_grid_error() -> None:
    text = _grid('name = "vae"').replace(
        'name = "metropolis"', 'name = "metropolis"\nreconstructed = true'
    )
    with pytest.raises(GridError, match=r"metropolis is a sampler.*\(avb, dense-vae, vae on"):
        make_plan(parse_grid(text))


def test_only_the_cells_that_ask_for_reconstructions_change_digest() -> None:
    plain = make_plan(parse_grid(_grid('name = "vae"')))
    off = make_plan(parse_grid(_grid('name = "vae"\nreconstructed = false')))
    on = make_plan(parse_grid(_grid('name = "vae"\nreconstructed = true')))
    assert [c.digest for c in plain.cells] == [c.digest for c in off.cells]
    changed = [c.id for c, d in zip(on.cells, plain.cells, strict=True) if c.digest != d.digest]
    assert changed == ["ising1d-6-vae"]


def test_the_paper_preset_reconstructs_every_network() -> None:
    plan = make_plan(load_preset("paper"))
    assert {m.name for m in plan.spec.methods if m.reconstructed} == {"vae", "dense-vae", "avb"}


# ---------------------------------------------------------------------------- runs
#: A dense VAE trained long on 16 configurations of a 6x6 torus at T = 3 (all distinct): it
#: learns them, so it reconstructs them far better than held-out ones.
OVERFIT_GRID = """
seed = 0
samples = 400

[reference]
chains = 4
warmup = 100
sweeps = 40
every = 10

[[models]]
name = "ising2d"
size = "6"
temps = [3.0]
histogram_temps = [3.0]

[[methods]]
name = "metropolis"

[[methods]]
name = "dense-vae"
likelihood = "bernoulli"
readout = "mean"
batch_size = 16
steps = 1500
reconstructed = true
"""


def _values(table: pd.DataFrame) -> pd.DataFrame:
    return table.drop(columns=list(TIMING_COLUMNS)).reset_index(drop=True)


@pytest.mark.slow
def test_reconstructed_rows_measure_overfitting_and_change_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "on"
    table = Runner(parse_grid(OVERFIT_GRID), out, progress=False).run()
    methods = set(table["method"])
    assert methods == {
        "metropolis",
        "dense-vae",
        "dense-vae:reconstructed-train",
        "dense-vae:reconstructed-heldout",
    }
    rows = table.set_index(["method", "observable"])
    for label in ("dense-vae:reconstructed-train", "dense-vae:reconstructed-heldout"):
        assert rows.loc[(label, "energy"), "exact"] is not None
        assert pd.isna(rows.loc[(label, "energy"), "ess_per_second"])  # never ranked
        assert rows.loc[(label, "reconstruction_error"), "estimate"] >= 0
    # The over-fitting gap: training configurations come back nearly intact, held-out ones
    # do not, by many combined standard errors.
    train = rows.loc[("dense-vae:reconstructed-train", "reconstruction_error")]
    heldout = rows.loc[("dense-vae:reconstructed-heldout", "reconstruction_error")]
    gap = (heldout["estimate"] - train["estimate"]) / math.hypot(train["stderr"], heldout["stderr"])
    assert train["estimate"] < 0.1 < heldout["estimate"] and gap > Z_MAX
    summary = (out / "summary.md").read_text()
    assert "reconstructed configurations" in summary
    ranking = summary.split("## Efficiency")[1].split("##")[0]
    assert "reconstructed" not in ranking
    assert (out / "figures" / "figure2-ising2d-6.png").is_file()

    # Off, the grid's other rows are the same numbers: the held-out block is a stream of its own.
    off = Runner(
        parse_grid(OVERFIT_GRID.replace("reconstructed = true", "")),
        tmp_path / "off",
        progress=False,
    ).run()
    kept = table[~table["method"].str.contains(":reconstructed-")]
    pd.testing.assert_frame_equal(_values(off), _values(kept))

    # Deterministic under the seed: made again from nothing (reference and held-out
    # configurations included), the rows are the same.
    (out / "cells" / "ising2d-6-dense-vae.json").unlink()
    shutil.rmtree(out / "cache")
    again = Runner(parse_grid(OVERFIT_GRID), out, progress=False).run()
    pd.testing.assert_frame_equal(_values(again), _values(table))
    # Resumed with nothing to do, the table is identical.
    resumed = Runner(parse_grid(OVERFIT_GRID), out, progress=False).run()
    pd.testing.assert_frame_equal(resumed, again)
