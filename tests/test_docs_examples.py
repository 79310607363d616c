"""The examples of docs/plugins.md, run as they are written there: a model in a field with
exact values of an extra observable, and a heat-bath sampler on the chain sampler base."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import jax
import numpy as np
import pytest
from click.testing import CliRunner

import spinbench
from spinbench.cli import main
from spinbench.runner import read_table
from spinbench.testing import ConformanceError, check_model, check_sampler

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def example(name: str) -> types.ModuleType:
    """The code block of the guide that starts with ``# example: <name>``, imported."""
    blocks = re.findall(r"```python\n(# example: (\w+)\n.*?)```", GUIDE.read_text(), re.S)
    source = next(code for code, label in blocks if label == name)
    spec = importlib.util.spec_from_loader(f"docs_example_{name}", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{GUIDE}:{name}", "exec"), module.__dict__)
    return module


@pytest.fixture(scope="module")
def paramagnet() -> types.ModuleType:
    return example("paramagnet")


@pytest.fixture(scope="module")
def heatbath() -> types.ModuleType:
    return example("heatbath")


def test_the_model_in_a_field_keeps_the_contract(paramagnet: types.ModuleType) -> None:
    check_model(paramagnet.Paramagnet)
    check_model(paramagnet.Paramagnet.from_size(5, h=-0.4))


def test_the_kit_checks_the_extra_exact_observable(paramagnet: types.ModuleType) -> None:
    """A wrong exact magnetisation in ``extra`` fails the kit's comparison with enumeration."""

    class Wrong(paramagnet.Paramagnet):
        def exact(self, temps: np.ndarray) -> spinbench.ExactResult:
            right = super().exact(temps)
            return dataclasses.replace(
                right, extra={"magnetization": right.extra["magnetization"] * 0.9}
            )

    with pytest.raises(ConformanceError, match=r"exact\(\)\.magnetization at T=.*enumerating"):
        check_model(Wrong.from_size(4, h=0.5), checks=["exact"])


def test_the_model_option_reaches_the_table(
    paramagnet: types.ModuleType, heatbath: types.ModuleType, tmp_path: Path
) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text(
        "seed = 2\nsamples = 100\n[reference]\nchains = 8\nwarmup = 50\nsweeps = 400\n"
        'every = 2\n\n[[models]]\nname = "paramagnet"\nsize = "4"\nh = 0.5\n'
        'temps = [1.0, 2.0]\n\n[[methods]]\nname = "metropolis"\n\n'
        '[[methods]]\nname = "heatbath"\n'
    )
    plugins = (("docs-paramagnet", paramagnet), ("docs-heatbath", heatbath))
    with spinbench.plugins_registered(*plugins):
        result = CliRunner().invoke(
            main, ["run", "--config", str(grid), "--out", str(tmp_path / "out"), "--quiet"]
        )
    assert result.exit_code == 0, result.output
    table = read_table(tmp_path / "out" / "results.csv")
    assert set(table["options"]) == {"h=0.5"}
    m = table[table["observable"] == "magnetization"]
    assert set(m["method"]) == {"metropolis", "heatbath"}
    np.testing.assert_allclose(m["exact"], np.tanh(0.5 / m["T"]))
    assert (m["z"] < 5).all(), m[["method", "T", "estimate", "exact", "z"]]


def test_the_heat_bath_sampler_samples(heatbath: types.ModuleType) -> None:
    sampler = heatbath.HeatBath(chains=4, warmup=10, sweeps=40, every=4)
    model = spinbench.get_model("ising2d").from_size(4)
    samples = sampler.sample(model, np.array([2.0, 3.0]), key=jax.random.key(0))
    assert samples.states.shape == (2, 4, 10, 4, 4) and samples.method == "heatbath"
    again = sampler.sample(model, np.array([2.0, 3.0]), key=jax.random.key(0))
    np.testing.assert_array_equal(samples.states, again.states)
    assert sampler.supports(spinbench.get_model("xy1d").from_size(4)) is not None


@pytest.mark.slow
def test_the_heat_bath_sampler_follows_the_boltzmann_distribution(
    heatbath: types.ModuleType,
) -> None:
    check_sampler(heatbath.HeatBath(chains=32, warmup=50, sweeps=500, every=5))


@pytest.fixture(scope="module", autouse=True)
def _no_leftover_modules() -> Iterator[None]:
    yield
    for name in [n for n in sys.modules if n.startswith("docs_example_")]:
        sys.modules.pop(name, None)
