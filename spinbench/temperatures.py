"""Temperature grids: validation and the command line's spelling (``1.0,2.5`` or ``0.5:4.0:20``).

Every exact solver and sampler takes its temperatures through :func:`check_temperatures`, so a
zero, negative or non-finite temperature fails early with one clear message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np

from ._errors import TemperatureError
from ._plain import plain

__all__ = ["MAX_TEMPERATURES", "check_temperatures", "parse_temps"]

#: Most temperatures in one grid: each has its own chains or network, all in one program.
MAX_TEMPERATURES = 1000

#: How to write a temperature grid (TEMPS on the command line), appended to format errors.
SPELLING = "TEMPS is a comma list like '1.0,2.5' or a range start:stop:count like '0.5:4.0:20'"

#: A number as TEMPS spells it: ASCII digits only (float() also takes '١٫٥' or '２.５'), an
#: optional exponent, or inf/nan (refused later, as not finite).
_NUMBER = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[+-]?(?:inf(?:inity)?|nan)",
    re.IGNORECASE,
)


def check_temperatures(temps: float | Iterable[float] | np.ndarray) -> np.ndarray:
    """Validate temperatures and return them as a 1D float64 array ``(temps,)``.

    A scalar becomes a one-element grid. Raises ValueError for an empty grid, an array of more
    than one axis, non-numbers, and any value that is not finite and > 0.
    """
    try:
        values = np.asarray(temps, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TemperatureError(f"temperatures must be numbers, got {plain(temps)!r}") from error
    if values.ndim > 1:
        raise TemperatureError(
            f"temperatures must be a scalar or a 1D list, got shape {values.shape}"
        )
    values = np.atleast_1d(values)
    if values.size == 0:
        raise TemperatureError("no temperatures given: the temperature grid is empty")
    if values.size > MAX_TEMPERATURES:
        raise TemperatureError(_too_many(values.size))
    bad = ~(np.isfinite(values) & (values > 0))
    if np.any(bad):
        raise TemperatureError(f"temperature must be finite and > 0, got {plain(values[bad][0])!r}")
    return values


def _too_many(count: int) -> str:
    return (
        f"{count} temperatures, more than the {MAX_TEMPERATURES} one grid may hold (each has its "
        "own chains or network, all in one program); split them over several grids"
    )


def parse_temps(text: str) -> np.ndarray:
    """Parse a temperature grid: ``"1.0,2.5"``, ``"0.5:4.0:20"`` or a comma list of both.

    A range ``start:stop:count`` has ``count`` evenly spaced values from ``start`` to ``stop``,
    both included (``count`` = 1 needs ``start == stop``). Returns float64 ``(temps,)`` in the
    order written; raises ValueError with a message saying what is wrong.
    """
    if not isinstance(text, str) or not text.strip():
        raise TemperatureError(f"temperatures {text!r} are empty; {SPELLING}")
    parts: list[np.ndarray] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            raise TemperatureError(
                f"temperatures {text!r} have an empty item between commas; {SPELLING}"
            )
        parts.append(_parse_range(item) if ":" in item else np.array([_number(item, text)]))
    return check_temperatures(np.concatenate(parts))


def _number(item: str, text: str) -> float:
    if not item.isascii():
        raise TemperatureError(
            f"{item!r} in temperatures {text!r} is not a number: write numbers in ASCII, "
            f"with the digits 0-9 and '.'; {SPELLING}"
        )
    if not _NUMBER.fullmatch(item):
        raise TemperatureError(f"{item!r} in temperatures {text!r} is not a number; {SPELLING}")
    return float(item)


def _parse_range(item: str) -> np.ndarray:
    """One ``start:stop:count`` range, inclusive of both ends."""
    fields = item.split(":")
    if len(fields) != 3:
        raise TemperatureError(f"temperature range {item!r} must have three fields; {SPELLING}")
    start, stop = _number(fields[0].strip(), item), _number(fields[1].strip(), item)
    count_text = fields[2].strip()
    if not re.fullmatch("[0-9]+", count_text) or int(count_text) < 1:
        raise TemperatureError(
            f"temperature range {item!r}: count {count_text!r} must be an integer >= 1, "
            "in the ASCII digits 0-9"
        )
    count = int(count_text)
    if count > MAX_TEMPERATURES:  # refused before linspace allocates it
        raise TemperatureError(f"temperature range {item!r}: {_too_many(count)}")
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise TemperatureError(f"temperature range {item!r}: start and stop must be finite")
    if start > stop:
        raise TemperatureError(f"temperature range {item!r}: start {start} is above stop {stop}")
    if count == 1 and start != stop:
        raise TemperatureError(
            f"temperature range {item!r}: a single value cannot include both ends; "
            f"use count >= 2 or write the one temperature alone"
        )
    return np.linspace(start, stop, count)
