"""Ctrl-C (SIGINT) and SIGTERM as one exception, so a command stops cleanly and keeps what finished."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The user (SIGINT) or the system (SIGTERM) asked the command to stop; exit code 128 + the signal's number."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, the first SIGINT or SIGTERM raises Interrupted; later ones are ignored until the block
    exits, so the cleanup that keeps finished work (writing results, registering them) is not cut short.
    Main thread only (Python delivers signals there)."""

    def stop(signum, frame):
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
