"""Grid files and presets: parsing, validation and errors that name the key and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spinbench.grid import GridError, load_grid, parse_grid
from spinbench.presets import list_presets, load_preset

GOOD = """
seed = 3
samples = 500

[reference]
sampler = "metropolis"
chains = 4

[[models]]
name = "ising1d"
size = "6"
temps = "0.5:2.0:4"
methods = ["vae"]

[[models]]
name = "Ising2D"
size = 4
temps = [2.0, 2.5]

[[methods]]
name = "metropolis"

[[methods]]
name = "vae"
epochs = 3
"""


def test_good_grid_is_parsed() -> None:
    grid = parse_grid(GOOD)
    assert grid.seed == 3
    assert grid.samples == 500
    assert grid.reference.sampler == "metropolis"
    assert grid.reference.options == {"chains": 4}
    np.testing.assert_allclose(grid.models[0].temps, [0.5, 1.0, 1.5, 2.0])
    assert grid.models[1].name == "ising2d"
    assert grid.models[1].size == "4"
    assert [m.name for m in grid.methods_for(grid.models[0])] == ["vae"]
    assert [m.name for m in grid.methods_for(grid.models[1])] == ["metropolis", "vae"]
    assert grid.methods[1].options == {"epochs": 3}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("seed = 3", "seed = -1"), "line 2: key 'seed'"),
        (("samples = 500", 'samples = "many"'), "line 3: key 'samples'"),
        (('temps = "0.5:2.0:4"', 'temps = "0.5:2.0"'), "line 12: key 'models[0].temps'"),
        (("temps = [2.0, 2.5]", "temps = [2.0, -2.5]"), "line 18: key 'models[1].temps'"),
        (('size = "6"', 'sise = "6"'), "line 11: key 'models[0].sise': unknown key"),
        (('methods = ["vae"]', 'methods = ["vea"]'), "key 'models[0].methods'"),
        (("epochs = 3", "epochs = 3\nname = 'x'"), "not valid TOML"),
        (("seed = 3", "seed = 3\nspeed = 1"), "line 3: key 'speed': unknown key"),
        (('"Ising2D"\nsize = 4', '"ising1d"\nsize = 6'), "key 'models[1].name': a second"),
    ],
)
def test_malformed_grids_name_the_key_and_line(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(GridError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_grid(GOOD.replace(*edit), "grid.toml")


def test_missing_models_and_required_keys() -> None:
    with pytest.raises(GridError, match="at least one"):
        parse_grid("seed = 1\n")
    with pytest.raises(GridError, match=r"models\[0\].size': is required"):
        parse_grid('[[models]]\nname = "ising1d"\ntemps = "1.0"\n')


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(GridError, match="cannot read grid file"):
        load_grid(tmp_path / "absent.toml")


def test_presets_parse_and_are_listed() -> None:
    names = {p["name"] for p in list_presets()}
    assert {"paper", "quick"} <= names
    paper = load_preset("paper")
    assert [m.name for m in paper.models] == ["ising1d", "xy1d", "ising2d"]
    assert paper.reference.options == {"chains": 20, "warmup": 2000, "sweeps": 10000, "every": 20}
    assert paper.samples == 10000
    two_d = paper.models[2]
    assert two_d.temps.min() < 2.269 < two_d.temps.max()
    assert [m.name for m in paper.methods_for(paper.models[1])] == ["metropolis", "avb"]


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(GridError, match=r"valid presets: paper, quick\. Did you mean 'paper'"):
        load_preset("papr")
