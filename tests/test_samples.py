"""Sample sets on disk (``_samples``): atomic saves, loads that name what is damaged, and the
cache that reuses a request and re-makes a damaged set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from spinbench import DamagedSamples, Samples
from spinbench._samples import cached, request_key

MODEL = {"model": "ising1d", "size": "4", "boundary": "free", "J": 1.0, "h": 0.0}


def make(seed: int = 0) -> Samples:
    rng = np.random.default_rng(seed)
    states = rng.choice(np.array([-1, 1], np.int8), size=(2, 3, 5, 4))
    return Samples(
        states=states,
        temps=np.array([1.0, 2.0]),
        model=MODEL,
        method="test",
        settings={"chains": 3},
        seed=seed,
        info={"acceptance": np.full((2, 3), 0.5)},
    )


def test_a_saved_set_loads_back_identically(tmp_path: Path) -> None:
    samples = make()
    samples.save(tmp_path / "set")
    loaded = Samples.load(tmp_path / "set")
    np.testing.assert_array_equal(loaded.states, samples.states)
    np.testing.assert_array_equal(loaded.info["acceptance"], samples.info["acceptance"])
    assert (loaded.model, loaded.method, loaded.seed) == (MODEL, "test", 0)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no-json", "samples.json is missing"),
        ("no-npz", "samples.npz is missing"),
        ("empty-npz", "unreadable"),
        ("truncated-npz", "unreadable"),
        ("not-json", "unreadable"),
        ("old-format", "sample format 0 is not 1"),
        ("wrong-shape", "states have shape"),
    ],
)
def test_a_damaged_set_is_named(tmp_path: Path, damage: str, message: str) -> None:
    folder = make().save(tmp_path / "set")
    arrays, meta = folder / "samples.npz", folder / "samples.json"
    if damage == "no-json":
        meta.unlink()
    elif damage == "no-npz":
        arrays.unlink()
    elif damage == "empty-npz":
        arrays.write_bytes(b"")
    elif damage == "truncated-npz":
        arrays.write_bytes(arrays.read_bytes()[:200])
    elif damage == "not-json":
        meta.write_text("{")
    elif damage == "old-format":
        meta.write_text(meta.read_text().replace('"format": 1', '"format": 0'))
    else:
        meta.write_text(meta.read_text().replace('"shape": [\n    2,', '"shape": [\n    7,'))
    with pytest.raises(DamagedSamples, match=message) as info:
        Samples.load(folder)
    assert str(folder) in str(info.value)


def test_the_cache_reuses_a_request_and_remakes_a_damaged_one(tmp_path: Path) -> None:
    made: list[int] = []
    reports: list[str] = []

    def produce() -> Samples:
        made.append(1)
        return make(len(made))

    def ask(settings: dict[str, int], stream: str = "") -> tuple[Samples, bool]:
        return cached(
            tmp_path,
            MODEL,
            np.array([1.0, 2.0]),
            "test",
            settings,
            7,
            produce,
            stream=stream,
            report=reports.append,
        )

    first, reused = ask({"chains": 3})
    again, reused_again = ask({"chains": 3})
    assert (reused, reused_again, len(made)) == (False, True, 1)
    np.testing.assert_array_equal(first.states, again.states)
    ask({"chains": 4})  # another request: another set
    ask({"chains": 3}, stream="reference:x")  # another random stream: another set
    assert len(made) == 3
    folder = next(
        p
        for p in tmp_path.iterdir()
        if request_key(MODEL, np.array([1.0, 2.0]), "test", {"chains": 3}, 7) in p.name
    )
    (folder / "samples.npz").write_bytes(b"")
    remade, reused = ask({"chains": 3})
    assert not reused and len(made) == 4
    assert len(reports) == 1 and str(folder) in reports[0] and "damaged" in reports[0]
    assert Samples.load(folder).seed == remade.seed


def test_request_keys_are_stable_and_tell_requests_apart() -> None:
    temps = np.array([1.0, 2.0])
    key = request_key(MODEL, temps, "test", {"chains": 3}, 7)
    assert key == request_key(dict(reversed(MODEL.items())), temps.copy(), "test", {"chains": 3}, 7)
    assert key != request_key({**MODEL, "h": 0.1}, temps, "test", {"chains": 3}, 7)
    assert key != request_key(MODEL, temps, "test", {"chains": 3}, 8)
    assert key != request_key(MODEL, temps[:1], "test", {"chains": 3}, 7)
