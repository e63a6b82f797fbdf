"""Ctrl-C and SIGTERM as an Event, for the long-running commands (run, demo, simulate)."""
import signal
import threading
from typing import Callable, Tuple


def stop_on_signals() -> Tuple[threading.Event, Callable[[], None]]:
    """An Event set by SIGINT or SIGTERM, and the function that puts the old handlers back."""
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda signum, frame: stop.set())
           for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return stop, restore
