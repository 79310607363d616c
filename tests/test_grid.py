"""Grid files and presets: parsing, validation and errors that name the key and line."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from spinbench.runner import GridError, list_presets, load_grid, load_preset, make_plan, parse_grid

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
        (
            ('size = "6"', 'sise = "6"'),
            "line 11: key 'models[0].sise': unknown key; did you mean 'size'",
        ),
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
    valid = r"valid presets: corrected, critical, critical-large, paper, quick\."
    with pytest.raises(GridError, match=valid + r" Did you mean 'paper'"):
        load_preset("papr")


# ---------------------------------------------------------------------------- whole-grid checks
PLANNED = """
seed = 0
samples = 100

[reference]
sampler = "metropolis"
chains = 4
warmup = 10
sweeps = 40
every = 2

[[models]]
name = "ising1d"
size = "6"
temps = [1.0, 2.0]

[[models]]
name = "ising2d"
size = "4"
temps = [2.0]

[[methods]]
name = "metropolis"

[[methods]]
name = "vae"
epochs = 2
"""


def plan_problems(text: str) -> str:
    with pytest.raises(GridError) as info:
        make_plan(parse_grid(text, "grid.toml"))
    return str(info.value)


def test_a_good_grid_plans_a_reference_and_method_cells() -> None:
    plan = make_plan(parse_grid(PLANNED, "grid.toml"))
    assert [c.id for c in plan.cells] == [
        "ising1d-6",
        "ising1d-6-metropolis",
        "ising1d-6-vae",
        "ising2d-4",
        "ising2d-4-metropolis",
        "ising2d-4-vae",
    ]
    assert len({c.digest for c in plan.cells}) == 6
    assert plan.reuses_reference(plan.cells[1]) and not plan.reuses_reference(plan.cells[2])


def test_every_problem_is_reported_at_once_with_its_line() -> None:
    text = (
        PLANNED.replace('size = "6"', 'size = "six"')
        .replace('name = "ising2d"\nsize = "4"', 'name = "ising2d"\nsize = "4"\nboundary = "free"')
        .replace("epochs = 2", "epochs = 2\nlayers = 3")
        .replace("every = 2", "every = 2\nspeed = 1")
    )
    message = plan_problems(text)
    assert message.startswith("grid.toml has 4 problems:")
    for expected in (
        "line 15: key 'models[0].size': size 'six' is not understood",
        "line 21: key 'models[1].boundary': 'free' is not a boundary of ising2d; choose one "
        "of: periodic",
        "line 30: key 'methods[1].layers': not an option of generator 'vae'; valid keys: name,",
        "line 11: key 'reference.speed': not an option of the reference sampler 'metropolis'",
    ):
        assert expected in message, message


def test_a_top_level_key_that_toml_put_in_the_reference_table_is_named() -> None:
    text = PLANNED.replace("every = 2", 'every = 2\nmethods = ["vae"]')
    message = plan_problems(text)
    assert "key 'reference.methods': not an option of the reference sampler" in message
    assert "'methods' is a top-level key" in message and "move it above the first table" in message


def test_invalid_option_values_of_methods_and_reference() -> None:
    message = plan_problems(
        PLANNED.replace("epochs = 2", "epochs = -1").replace("every = 2", "every = 0")
    )
    assert message.startswith("grid.toml has 2 problems:")  # metropolis shares the reference's
    assert "line 27: key 'methods[1].epochs': invalid options for vae: epochs must be" in message
    assert (
        "line 10: key 'reference.every': invalid options for metropolis: every must be" in message
    )


def test_a_method_that_cannot_run_on_a_model_is_refused_before_work() -> None:
    text = PLANNED.replace('size = "4"', 'size = "2"').replace(
        'name = "metropolis"', 'name = "metropolis"\nupdate = "checkerboard"'
    )
    message = plan_problems(text)
    assert "key 'models[1].methods': metropolis cannot run on ising2d 2x2" in message
    assert "checkerboard updates cannot be trusted" in message


def test_a_grid_needs_methods() -> None:
    with pytest.raises(GridError, match=r"key 'methods': at least one \[\[methods\]\] table"):
        parse_grid(PLANNED.split("[[methods]]")[0], "grid.toml")


@pytest.mark.parametrize(
    ("first", "second", "system"),
    [
        ('size = "4"', 'size = "4x4"', "ising2d 4x4, periodic, J=1"),
        ('size = "6"', 'size = "6"\nboundary = "free"', "ising1d 6, free, J=1"),
    ],
    ids=["size-spelling", "default-boundary"],
)
def test_one_system_spelled_twice_is_refused(first: str, second: str, system: str) -> None:
    name = system.split()[0]
    twice = (
        f'[[models]]\nname = "{name}"\n{first}\ntemps = [2.0]\n\n'
        f'[[models]]\nname = "{name}"\n{second}\ntemps = [3.0]\n\n'
    )
    text = PLANNED.split("[[models]]")[0] + twice + "[[methods]]" + PLANNED.split("[[methods]]")[1]
    message = plan_problems(text)
    assert (
        f"key 'models[1].size': the same system as models[0] ({system}.0, h=0.0) spelled" in message
    )


def test_a_grid_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_bytes(PLANNED.encode("utf-8").replace(b"seed = 0", b"# caf\xe9\nseed = 0"))
    with pytest.raises(GridError, match=r"grid.toml is not UTF-8 text \(byte 0xe9 at offset"):
        load_grid(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("temps = [2.0]", "temps = [2.0]\nJ = true"), "key 'models[1].J': must be a finite"),
        (("samples = 100", "samples = true"), "key 'samples': must be an integer >= 2, got true"),
        (("seed = 0", "seed = 1.5"), "key 'seed': must be a non-negative integer, got 1.5"),
        (("temps = [2.0]", "temps = [2.0, true]"), "a list of temperatures must hold numbers"),
    ],
)
def test_booleans_are_not_numbers(edit: tuple[str, str], message: str) -> None:
    with pytest.raises(GridError, match=re.escape(message)):
        parse_grid(PLANNED.replace(*edit), "grid.toml")


def test_a_lattice_too_large_for_memory_is_refused_with_the_estimate() -> None:
    message = plan_problems(PLANNED.replace('size = "4"', 'size = "100000"'))
    assert (
        "key 'models[1].size': the reference samples of ising2d 100000x100000 would need about"
        in (message)
    )
    assert "TiB of memory, more than the" in message and "available here" in message


def test_seed_override_is_written_into_the_grid_text() -> None:
    grid = parse_grid(PLANNED, "grid.toml").with_seed(7)
    assert grid.seed == 7 and "seed = 7\n" in grid.text and "seed = 0" not in grid.text
    assert parse_grid(grid.text).seed == 7
    without = parse_grid(PLANNED.replace("seed = 0\n", ""), "grid.toml").with_seed(3)
    assert parse_grid(without.text).seed == 3


def test_a_model_option_is_validated_by_the_model() -> None:
    text = PLANNED.replace('size = "4"\ntemps = [2.0]', 'size = "4"\ntemps = [2.0]\nhh = 0.3')
    message = plan_problems(text)
    assert "key 'models[1].hh': ising2d has no option 'hh'; its options: h. Did you mean 'h'?" in (
        message
    )
    bad = plan_problems(
        PLANNED.replace('size = "4"\ntemps = [2.0]', 'size = "4"\ntemps = [2.0]\nh = "x"')
    )
    assert "key 'models[1].h': invalid options for ising2d: the field h must be a finite" in bad
    plan = make_plan(
        parse_grid(
            PLANNED.replace('size = "4"\ntemps = [2.0]', 'size = "4"\ntemps = [2.0]\nh = 0.3')
        )
    )
    field = next(c for c in plan.cells if c.label == "ising2d-4-h=0.3")
    assert plan.model(field).h == 0.3 and plan.model(field).describe()["h"] == 0.3
