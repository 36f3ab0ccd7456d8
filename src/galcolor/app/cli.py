"""The `galcolor` command: parse, dispatch to a command, and turn errors and signals into exit codes.

Exit codes: 0 success; 1 an error, or some files could not be coloured; 2 a usage error; 130 interrupted
(Ctrl-C); 143 terminated (SIGTERM, e.g. a batch scheduler's kill).
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings
from typing import Sequence

from ..errors import GalcolorError
from .arguments import build_parser
from .commands import COMMANDS, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that it unwinds the same way: unfinished outputs deleted."""


def _raise_terminated(signum, frame):
    raise Terminated()


NEGATIVE_VALUED = ("--galaxy-colour",)  # its a* is often negative: "-2,8" would read as an option


def joined_negative_values(argv: list[str]) -> list[str]:
    """`--galaxy-colour -2,8` as `--galaxy-colour=-2,8`, which argparse reads as a value."""
    joined, index = [], 0
    while index < len(argv):
        if argv[index] in NEGATIVE_VALUED and index + 1 < len(argv) and argv[index + 1].startswith("-"):
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(joined_negative_values(sys.argv[1:] if argv is None else list(argv)))
    warnings.filterwarnings("ignore", module="PIL")  # odd EXIF and the like: the file still decodes
    on_main_thread = threading.current_thread() is threading.main_thread()  # only there may signal handlers be set
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    try:
        return COMMANDS[args.command](args)
    except GalcolorError as err:
        print(f"galcolor: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:  # e.g. a run folder that is a file, a full disk: one line, no traceback
        where = f"{err.filename}: " if err.filename else ""
        print(f"galcolor: error: {where}{err.strerror or err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"galcolor: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
