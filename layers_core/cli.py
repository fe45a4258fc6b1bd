"""The one way a run.py starts: errors become one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from layers_core.errors import TinycaveError

INTERRUPTED_EXIT_CODE = 130


def status(message: str) -> None:
    """Print a progress or status line on stderr at once (stdout stays for results)."""
    print(message, file=sys.stderr, flush=True)


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Run ``main(argv)`` and exit with its status.

    A ``TinycaveError`` prints ``error: <message>`` on stderr and exits with its
    code; Ctrl-C prints one line saying earlier results are untouched and exits 130.
    Any other exception is a bug in tinycave and keeps its traceback.
    """
    try:
        status = main(argv)
    except TinycaveError as err:
        print(f"error: {err.message}", file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("\ninterrupted: nothing was written over; earlier results are intact.", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    sys.exit(status)
