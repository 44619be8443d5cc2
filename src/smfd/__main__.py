"""``smfd`` and ``python -m smfd``: the command line (:mod:`smfd.cli`). Ctrl-C while it starts (PyTorch takes a
second or more to import) stops it as it does later: one line and exit 130, no traceback."""

import os
import signal
import sys


def _stop_while_starting(signum, frame) -> None:
    # at once, from the handler: raised as KeyboardInterrupt, it could land where Python only prints it (an import
    # lock's callback) or inside an extension's start-up code (Python then ends itself by SIGINT at exit); nothing
    # is open or written yet
    sys.stderr.write("smfd: error: stopped by Ctrl-C\n")
    sys.stderr.flush()
    os._exit(130)


def run() -> None:
    previous = signal.getsignal(signal.SIGINT)
    if previous is signal.default_int_handler:  # not where Ctrl-C is ignored (a job started with nohup or &)
        signal.signal(signal.SIGINT, _stop_while_starting)
    try:
        from .cli import main
    finally:
        signal.signal(signal.SIGINT, previous)
    main()


if __name__ == "__main__":
    run()
