"""The one error type of the workflow.

Everything under tools/ raises WorkflowError for a user-facing problem; the task edge
(tasks.py) turns it into a one-line message and a non-zero exit. Nothing else exits.
"""

from __future__ import annotations


class WorkflowError(Exception):
    """A problem the user can act on: what went wrong, and what to do about it."""

    #: Exit code of the task that fails with this error.
    code: int = 1

    def __init__(self, message: str, hint: str | None = None, code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        line = self.message.rstrip(".")
        if self.hint:
            line += f": {self.hint}"
        return line
