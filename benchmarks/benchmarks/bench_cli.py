"""Start-up of the command line: ``spinbench --help``, ``list`` and ``list presets``.

``timeraw_*`` benchmarks run their code in a fresh interpreter, so the time includes every
import (asv's way to measure import time). Before the lazy command line (issue 16) each took
seconds, JAX's import among them; the listing now comes from a cache that ``setup`` fills.
"""

from __future__ import annotations

#: Run the command line with these arguments, its output discarded.
_RUN = """
import contextlib, io
from spinbench.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main({arguments!r}, prog_name="spinbench")
    except SystemExit:
        pass
"""


class StartUp:
    """Seconds from a fresh interpreter to a command's output (imports included)."""

    timeout = 120.0

    def setup(self) -> None:
        try:  # fill the listing cache (absent before the lazy command line: nothing to fill)
            from spinbench._listing import listing
        except ImportError:
            return
        listing()

    def timeraw_help(self) -> str:
        return _RUN.format(arguments=["--help"])

    def timeraw_list(self) -> str:
        return _RUN.format(arguments=["list"])

    def timeraw_list_presets(self) -> str:
        return _RUN.format(arguments=["list", "presets"])
