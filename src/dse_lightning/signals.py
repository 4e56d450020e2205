"""A run stopped by SIGTERM or SIGINT exits 128 + the signal, as a shell reports a killed process, and
says that the same command resumes.

Lightning turns SIGTERM during fitting into `SIGTERMException`, a SystemExit with no code (exit status 0:
a scheduler that preempts a job with SIGTERM would record success), and Ctrl-C into `sys.exit(1)`.
`LastCheckpoint` saves last.ckpt on SIGTERM, which Lightning raises between batches.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator

from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


@contextlib.contextmanager
def exit_status_on_signal() -> Iterator[None]:
    received: list[int] = []

    def on_sigint(signum: int, frame) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    except SIGTERMException:
        received.append(signal.SIGTERM)
    except (KeyboardInterrupt, SystemExit):  # Lightning's sys.exit(1) after Ctrl-C
        if not received:
            raise
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        name = signal.Signals(received[0]).name
        log.error("stopped by %s: no results.json; the same command resumes where it stopped", name)
        raise SystemExit(128 + received[0])
