"""The summary and figures of a run: numbers that mean something, bins on energy levels."""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

# Unit tests of the internal pieces of a report: the relative error, number formats, histogram
# bins, the summary text and the table built from cell rows.
from spinbench._analysis import REL_ERROR_MIN_EXACT, relative_error
from spinbench._report import (
    MAX_LEVEL_BINS,
    _format,
    _histogram_bins,
    _histogram_panel,
    summarise,
    summary_text,
)
from spinbench._run_folder import rows_to_table
from spinbench.models import XY1D, Ising1D, Ising2D
from spinbench.runner import COLUMNS


def row(**values: object) -> dict[str, object]:
    base: dict[str, object] = dict.fromkeys(COLUMNS)
    base.update(model="ising1d", size="6", boundary="free", method="m", status="ok")
    base.update(wall_time=1333.25, T=1.0)
    base.update(values)
    return base


def test_relative_errors_only_where_the_exact_value_is_not_near_zero() -> None:
    assert relative_error(0.52, 0.5, "correlation") == pytest.approx(0.04)
    # T = 1000: the exact correlation at r = 3 is ~1e-9; a noise of 0.01 is not a 1e7 error
    assert relative_error(0.01, 1e-9, "correlation") is None
    assert relative_error(0.01, REL_ERROR_MIN_EXACT * 0.99, "abs_magnetization") is None
    # energies are measured in units of |J|
    assert relative_error(-0.021, -0.02, "energy", J=1.0) is None
    assert relative_error(-0.021, -0.02, "energy", J=0.1) == pytest.approx(0.05)


def test_summary_worst_z_takes_every_observable_and_infinity() -> None:
    table = rows_to_table(
        [
            row(observable="energy", z=1.0, estimate=-1.0, exact=-1.0, rel_error=0.01),
            row(observable="correlation", r=1, z=2.0, rel_error=0.1),
            row(observable="abs_magnetization", z=7.5),
            row(observable="heat_capacity", z=math.inf, status="degenerate", reason="r"),
            row(observable="energy_tv", estimate=0.1, noise_floor=0.02),
        ]
    )
    line = summarise(table).iloc[0]
    assert line["mean abs(z)"] == pytest.approx(1.5)  # energy and correlation rows
    assert line["worst abs(z)"] == math.inf
    assert line["flagged rows"] == 1
    text = summary_text(table, [], 1, [])
    assert "| 1.5 | inf |" in text
    assert "| 1333.2 |" in text and "e+03" not in text
    assert "## Flagged rows (1)" in text and "heat_capacity: degenerate: r" in text


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("wall time (s)", 1333.25, "1333.2"),
        ("wall time (s)", 0.04, "0.0"),
        ("worst abs(z)", math.inf, "inf"),
        ("energy TV", math.nan, "–"),
        ("energy TV", 0.012345, "0.0123"),
        ("failures", "a | b", "a / b"),
    ],
)
def test_summary_cells_are_plain(column: str, value: object, shown: str) -> None:
    assert _format(column, value) == shown


@pytest.mark.parametrize(
    "model", [Ising2D.from_size(4), Ising1D.from_size(6), Ising2D.from_size("4x6", J=-0.5)]
)
def test_energy_histograms_have_one_bin_per_level(model: Ising1D | Ising2D) -> None:
    levels = model.exact_energy_distribution(np.asarray([2.0])).levels / model.n_sites
    edges = _histogram_bins(model, 2.0, [])
    assert len(edges) == len(levels) + 1
    counts, _ = np.histogram(levels, bins=edges)
    assert (counts == 1).all()  # every level alone in its bin, no empty bins between


def test_continuous_spins_get_equal_bins() -> None:
    assert _histogram_bins(XY1D.from_size(4), 1.0, [np.zeros(3)]) == 30


def test_the_table_keeps_infinities_and_text_sizes() -> None:
    table = rows_to_table([row(observable="z", z="inf", size="6"), row(observable="x", z=None)])
    assert table["z"].iloc[0] == math.inf and math.isnan(table["z"].iloc[1])
    assert table["size"].tolist() == ["6", "6"]
    assert list(table.columns) == list(COLUMNS)
    assert isinstance(table, pd.DataFrame)


def test_exact_values_where_a_solver_refuses_some_temperatures() -> None:
    """T = 0.001 is below the torus closed form's limit: that temperature has no exact values,
    the others keep theirs (a grid does not lose every exact value for one cold point)."""
    from spinbench._analysis import exact_where_known

    model = Ising2D.from_size(10)
    with pytest.raises(ValueError, match="needs"):
        model.exact(np.asarray([0.001, 2.0]))
    exact = exact_where_known(model, np.asarray([0.001, 2.0, 3.0]))
    assert exact is not None
    assert np.isnan(exact.energy[0]) and np.isfinite(exact.energy[1:]).all()
    np.testing.assert_allclose(exact.energy[1:], model.exact(np.asarray([2.0, 3.0])).energy)
    assert "0.001" in exact.notes["refused"]
    assert exact_where_known(model, np.asarray([0.001])) is None


@pytest.mark.parametrize(("size", "T"), [("4", 2.0), ("16", 2.269), ("32", 2.269), ("32", 1.5)])
def test_histogram_panels_draw_the_exact_distribution_over_their_bins(size: str, T: float) -> None:
    """Tori too large to enumerate (exact, Beale) keep whole levels per bin, at most
    MAX_LEVEL_BINS bins, covering the distribution and every energy seen; the exact density
    over the bins carries all the probability."""
    model = Ising2D.from_size(size)
    exact = model.exact_energy_distribution(np.asarray([T]))
    assert exact is not None
    levels = exact.levels / model.n_sites
    seen = [np.array([levels[-3]])]  # a sample far in the tail
    edges, density = _histogram_panel(model, T, seen)
    assert density is not None and len(density) == len(edges) - 1 <= MAX_LEVEL_BINS
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0, abs=1e-5)
    counts, _ = np.histogram(levels, bins=edges)
    assert (counts >= 1).all()  # every bin holds whole levels
    assert edges[0] < seen[0][0] < edges[-1]
    in_range = np.count_nonzero((levels > edges[0]) & (levels < edges[-1]))
    assert counts.max() == math.ceil(in_range / MAX_LEVEL_BINS)  # 1 when the levels are few


# ---------------------------------------------------------------------------- report.html
def test_html_report_escapes_text_and_marks_failures(tmp_path: Path) -> None:
    from spinbench._report import html_report

    table = rows_to_table(
        [
            row(observable="energy", estimate=1.0, stderr=0.1, exact=1.0, z=0.0),
            row(method="<script>alert(1)</script>", status="failed", reason="a <b> & c"),
            row(
                method="flaky",
                observable="energy",
                status="unconverged",
                reason="R-hat 1.2",
                estimate=1.0,
                stderr=0.1,
            ),
        ]
    )
    page = html_report(
        table, {}, missing=["x-vae"], total=4, problems=["figure2: <none>"], provenance={}
    )
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &lt;b&gt; &amp; c" in page
    assert '<tr class="failed">' in page and '<tr class="flagged">' in page
    assert "R-hat 1.2" in page and "Partial run: 1 of 4 cells are missing" in page
    assert "http://" not in page and "https://" not in page  # nothing to fetch
    assert "@media print" in page


@pytest.fixture
def browser() -> Iterator[Any]:
    """Headless Chromium through selenium and Debian's chromedriver; a skip naming what is
    missing where either is not installed (before any run is made for the test)."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')"
    )
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip(
            "no headless Chromium here (Debian: apt-get install chromium chromium-driver; "
            f"chromium: {chromium}, chromedriver: {driver})"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chrome = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    try:
        yield chrome
    finally:
        chrome.quit()


def _column(browser: Any, index: int) -> list[float]:
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#summary-table tbody tr'))"
        ".map(r => r.cells[arguments[0]].getAttribute('data-value'));",
        index,
    )
    return [float(c) for c in cells if c]


@pytest.mark.slow
def test_report_in_a_real_browser(browser: Any, small_runs: tuple[Path, Path]) -> None:
    """report.html loads without console errors, its table sorts on a click, every figure
    is drawn with a size."""
    page = small_runs[0] / "report.html"
    browser.get(page.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    headers = browser.find_elements("css selector", "#summary-table thead th")
    names = [h.text.split("\n")[0].strip() for h in headers]
    column = names.index("worst abs(z)")
    headers[column].click()
    ascending = _column(browser, column)
    assert len(ascending) >= 2 and ascending == sorted(ascending)
    assert headers[column].get_attribute("aria-sort") == "ascending"
    headers[column].click()
    assert _column(browser, column) == sorted(ascending, reverse=True)
    images = browser.find_elements("css selector", "figure img")
    assert len(images) >= 1
    for image in images:
        size = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return [arguments[0].naturalWidth, r.width, r.height];",
            image,
        )
        assert min(size) > 0, (image.get_attribute("alt"), size)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
