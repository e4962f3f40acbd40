"""The live display's terminal session: Rich draws it, and the log prints above it whole.

Scrapy's root log handler holds the original stderr, so while the display is live every
root handler that writes to that terminal is given a stream that prints each complete line
through Rich's console instead (Rich then redraws the display below it). The handlers keep
their formatters, levels and filters (the token mask): the lines are today's lines. Rich
also redirects ``sys.stderr`` (tracebacks, warnings printed directly) and, when it is the
same terminal, ``sys.stdout``. :meth:`TerminalDisplay.finish` puts everything back and
shows the cursor again (the progress extension also calls it at interpreter exit, for a run
that never reaches its end: a second Ctrl-C stops the reactor at once).
"""

from __future__ import annotations

import io
import logging
import sys
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from pgy_spider.extensions import progressview
from pgy_spider.extensions.progressfigures import is_terminal

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pgy_spider.extensions.progressfigures import Figures, Outcome


class LogLines(io.TextIOBase):
    """A log handler's stream that prints each complete line above the live display.

    Printed with soft wrapping: a long line is wrapped by the terminal, not cut into
    several lines, so it stays one line when copied.
    """

    def __init__(self, console: Console) -> None:
        super().__init__()
        self._console = console
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            # from_ansi: a coloured formatter's codes are kept as colours, not shown raw.
            self._console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def finish(self) -> None:
        """Print a last line that has no line end yet."""
        if self._partial:
            self._console.print(Text.from_ansi(self._partial), soft_wrap=True)
            self._partial = ""


class TerminalDisplay:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.console = Console(file=stream)
        self._live: Live | None = None
        self._lines: LogLines | None = None
        self._routed: list[tuple[logging.StreamHandler[TextIO], TextIO]] = []

    @property
    def live(self) -> bool:
        return self._live is not None

    def start(self, figures: Figures, handlers: Iterable[logging.StreamHandler[TextIO]]) -> None:
        """Draw the display and route these log handlers' lines above it."""
        stdout_here = is_terminal(sys.stdout)
        live = Live(
            progressview.panel(figures),
            console=self.console,
            auto_refresh=False,  # redrawn by the extension's timer, on the reactor's thread
            transient=True,  # the outcome table is what stays on the screen
            redirect_stdout=stdout_here,
            redirect_stderr=True,
        )
        live.start(refresh=True)
        self._live = live
        self._lines = LogLines(self.console)
        for handler in handlers:
            old = handler.setStream(self._lines)  # type: ignore[arg-type]
            if old is not None:
                self._routed.append((handler, old))

    def show(self, figures: Figures) -> None:
        if self._live is not None:
            self._live.update(progressview.panel(figures), refresh=True)

    def finish(self, result: Outcome | None = None) -> None:
        """Take the display away, give the log its stream back, then print the table."""
        if self._lines is not None:
            self._lines.finish()
        for handler, old in self._routed:
            handler.setStream(old)
        self._routed.clear()
        if self._live is not None:
            self._live.stop()
            self._live = None
        if result is not None:
            print_outcome(self.stream, result)


def print_outcome(stream: TextIO, result: Outcome) -> None:
    """The outcome table, on ``stream`` (a terminal)."""
    Console(file=stream).print(progressview.outcome_table(result))
