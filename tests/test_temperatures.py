"""Temperature grids: validation and parsing of the command line's spelling."""

from __future__ import annotations

import numpy as np
import pytest

from spinbench.temperatures import check_temperatures, parse_temps


def test_check_temperatures_returns_float64_1d() -> None:
    out = check_temperatures([1, 2.5])
    assert out.dtype == np.float64
    assert out.shape == (2,)
    np.testing.assert_array_equal(check_temperatures(2.0), [2.0])
    np.testing.assert_array_equal(check_temperatures(np.array([0.5, 3.0])), [0.5, 3.0])


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan, np.inf, -np.inf])
def test_check_temperatures_rejects_bad_values(bad: float) -> None:
    with pytest.raises(ValueError, match=r"temperature must be finite and > 0, got"):
        check_temperatures([1.0, bad])


@pytest.mark.parametrize(
    ("bad", "shown"), [(-1.0, "-1.0"), (np.float32(0.0), "0.0"), (np.nan, "nan"), (-np.inf, "-inf")]
)
def test_bad_temperature_is_shown_as_a_plain_number(bad: float, shown: str) -> None:
    with pytest.raises(ValueError) as info:
        check_temperatures(np.array([1.0, bad]))
    assert str(info.value) == f"temperature must be finite and > 0, got {shown}"


@pytest.mark.parametrize(
    ("bad", "message"),
    [([], "empty"), ([[1.0, 2.0]], "1D"), (["warm"], "numbers")],
)
def test_check_temperatures_rejects_bad_shapes(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_temperatures(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.0,2.5", [1.0, 2.5]),
        (" 2 ", [2.0]),
        ("0.5:4.0:8", np.linspace(0.5, 4.0, 8)),
        ("1:1:1", [1.0]),
        ("1:2:3, 5", [1.0, 1.5, 2.0, 5.0]),
        ("1e-1,1E2", [0.1, 100.0]),
    ],
)
def test_parse_temps(text: str, expected: list[float]) -> None:
    out = parse_temps(text)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15)


def test_parse_temps_range_is_inclusive() -> None:
    out = parse_temps("0.5:4.0:20")
    assert out.size == 20
    assert out[0] == 0.5
    assert out[-1] == 4.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("1.0,,2.0", "empty item"),
        ("1.0,", "empty item"),
        ("abc", "not a number"),
        ("1.0;2.0", "not a number"),
        ("1:2", "three fields"),
        ("1:2:3:4", "three fields"),
        ("1:2:0", "integer >= 1"),
        ("1:2:-3", "integer >= 1"),
        ("1:2:2.5", "integer >= 1"),
        ("1:2:x", "integer >= 1"),
        ("3:1:4", "above stop"),
        ("1:2:1", "single value"),
        ("a:2:3", "not a number"),
        ("0:2:3", "finite and > 0"),
        ("-1.0", "finite and > 0"),
        ("nan", "finite and > 0"),
        ("inf", "finite and > 0"),
        ("1:inf:3", "finite"),
    ],
)
def test_parse_temps_rejects_malformed(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_temps(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("２.５", "'２.５' in temperatures '２.５' is not a number: write numbers in ASCII"),
        ("1.0,١٫٥", "'١٫٥' in temperatures '1.0,١٫٥' is not a number: write numbers in ASCII"),
        ("1:٢:3", "'٢' in temperatures '1:٢:3' is not a number: write numbers in ASCII"),
        ("1:2:３", "count '３' must be an integer >= 1, in the ASCII digits 0-9"),
        ("1_0", "'1_0' in temperatures '1_0' is not a number"),
    ],
)
def test_parse_temps_takes_only_ascii_numbers(text: str, message: str) -> None:
    """float() reads other scripts' digits and underscores; TEMPS is plain ASCII."""
    with pytest.raises(ValueError) as info:
        parse_temps(text)
    assert message in str(info.value)


def test_the_number_of_temperatures_is_capped_before_allocating() -> None:
    from spinbench.temperatures import MAX_TEMPERATURES

    assert len(parse_temps(f"1:2:{MAX_TEMPERATURES}")) == MAX_TEMPERATURES
    with pytest.raises(ValueError, match=r"100000000000 temperatures, more than the 1000"):
        parse_temps("0.5:4.0:100000000000")
    with pytest.raises(ValueError, match=r"1001 temperatures, more than the 1000 one grid"):
        check_temperatures(np.linspace(1, 2, MAX_TEMPERATURES + 1))
