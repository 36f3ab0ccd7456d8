"""Stopping a run that colours in several threads: the first Ctrl-C stops every lane, later ones wait."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def first_interrupt_only(stop: threading.Event) -> Iterator[None]:
    """While lanes run, the first Ctrl-C (or SIGTERM, where a handler turns it into an exception)
    sets `stop` and raises as usual; later ones are ignored until the lanes have stopped. People
    press Ctrl-C twice, and `timeout` signals twice; a second KeyboardInterrupt would end the wait
    for the lanes, and an interpreter that exits while a lane is inside torch aborts (exit 134),
    leaving that lane's temporary file behind. Signal handlers can be set on the main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}

    def once(number, frame):
        if not stop.is_set():
            stop.set()
            previous[number](number, frame)

    handled = [number for number, handler in previous.items() if callable(handler)]
    for number in handled:
        signal.signal(number, once)
    try:
        yield
    finally:
        for number in handled:
            signal.signal(number, previous[number])
