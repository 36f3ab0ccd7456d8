"""Errors a user can cause. Each carries a one-line message the CLI prints without a traceback."""

from __future__ import annotations

from pathlib import Path


class GalcolorError(Exception):
    """A problem with the user's input or request; ``str(err)`` is one line meant for them."""


class Stopped(Exception):
    """Work given up because the user interrupted the run (the thread that saw Ctrl-C raises KeyboardInterrupt)."""


class InputError(GalcolorError):
    """A file that cannot be used, with the file named first: ``path: problem``."""

    def __init__(self, path: str | Path, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")
