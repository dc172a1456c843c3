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
    """Inside the block, the first SIGINT or SIGTERM raises Interrupted; from then on both are ignored, to the end of
    the process (it is on its way out), so the cleanup that keeps finished work (writing and registering results) is
    not cut short by a second Ctrl-C. Without a stop the previous handlers come back when the block ends.
    Main thread only (Python delivers signals there)."""
    stopped = False

    def stop(signum, frame):
        nonlocal stopped
        stopped = True
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {number: signal.signal(number, stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        if not stopped:
            for number, handler in previous.items():
                signal.signal(number, handler)
