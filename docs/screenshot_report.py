"""Screenshot of a run's report.html in headless Chromium (the picture in docs/figures/).

    spinbench run --preset paper --out /tmp/paper
    python docs/screenshot_report.py /tmp/paper/report.html \
        docs/figures/report-paper.png --height 2600

Needs selenium (``pip install -e '.[test]'``) and Chromium with its driver (Debian:
``apt-get install chromium chromium-driver``). The page is drawn 1280 pixels wide, a laptop's
width, and cut at ``--height`` pixels (the top: summary, efficiency, the first model).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from selenium import webdriver


def screenshot(page: Path, out: Path, *, width: int = 1280, height: int = 2200) -> None:
    """Draw ``page`` in headless Chromium and save the top ``height`` pixels as PNG."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise SystemExit(
            "needs chromium and chromedriver (apt-get install chromium chromium-driver)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(argument)
    options.add_argument(f"--window-size={width},{height}")
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    try:
        browser.get(page.resolve().as_uri())
        browser.save_screenshot(str(out))
    finally:
        browser.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path, help="a run folder's report.html")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2200)
    args = parser.parse_args()
    screenshot(args.page, args.out, width=args.width, height=args.height)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
