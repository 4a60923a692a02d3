"""The project's error types and their exit statuses (docs/machine.md, "What a run reports").

Every error a user can cause is one of these; the CLI prints `str(error)` as one line (plus a
caret line for source errors) and exits with `error.exit_status`. Nothing else escapes as a
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_PROGRAM_ERROR = 1
EXIT_USAGE = 2
EXIT_TRAP = 3
EXIT_STEP_LIMIT = 4


class MlpcError(Exception):
    """An error in the user's program, inputs or files (exit status 1)."""

    exit_status = EXIT_PROGRAM_ERROR

    def render(self) -> str:
        """The full text shown to the user (one line, or more for source errors)."""
        return f"error: {self}"


class UsageError(MlpcError):
    """A command-line usage error (exit status 2)."""

    exit_status = EXIT_USAGE


@dataclass(frozen=True)
class SourcePos:
    """A position in a source file: 1-based line and column."""

    line: int
    col: int


class SourceError(MlpcError):
    """An error at a position in a source file: rendered as `file:line:col: error: message`
    followed by the offending line and a caret under the column."""

    def __init__(self, message: str, path: str, pos: SourcePos, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.path = path
        self.pos = pos
        self.source = source

    def __str__(self) -> str:
        return f"{self.path}:{self.pos.line}:{self.pos.col}: error: {self.message}"

    def render(self) -> str:
        text = str(self)
        if self.source is not None:
            lines = self.source.splitlines()
            if 1 <= self.pos.line <= len(lines):
                line = lines[self.pos.line - 1].expandtabs(1)
                caret = " " * max(self.pos.col - 1, 0) + "^"
                text += f"\n{line}\n{caret}"
        return text
