"""The one error type of the workflow.

Everything under tools/ raises WorkflowError for a user-facing problem; the task edge
(tasks.py) turns it into a one-line message and a non-zero exit. Nothing else exits.
"""

from __future__ import annotations


class WorkflowError(Exception):
    """A problem the user can act on: what went wrong, and what to do about it."""

    #: Exit code of the task that fails with this error.
    code: int = 1
    #: What the task edge prints before the message ("" for a line that is not an error's).
    prefix: str = "error: "

    def __init__(
        self, message: str, hint: str | None = None, code: int | None = None, prefix: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if code is not None:
            self.code = code
        if prefix is not None:
            self.prefix = prefix

    def line(self) -> str | None:
        """The one line the task edge prints; None when the exit code says it all (the report's
        lines above said why)."""
        return f"{self.prefix}{self}" if self.message else None

    def __str__(self) -> str:
        line = self.message.rstrip(".")
        if self.hint:
            line += f": {self.hint}"
        return line


# Exit codes of the tasks (documented in README.md).
OK, ERROR, OUT_OF_SYNC = 0, 1, 2


class OutOfSync(WorkflowError):
    """Something is behind the models or the migrations (pending files, a stale schema.sql,
    drift): exit code 2, so that CI tells it from an error."""

    code = OUT_OF_SYNC


def exit_with(code: int) -> None:
    """End a task whose report printed why with `code`: silent OutOfSync for 2, a silent
    WorkflowError for any other non-zero code, nothing for 0."""
    if code == OUT_OF_SYNC:
        raise OutOfSync("")
    if code:
        raise WorkflowError("", code=code)


class NotAdopted(WorkflowError):
    """A database that holds objects but no Atlas migration history: the way forward is the
    baseline (inv migrate.baseline). `kinds`: the kinds of object it holds, when known."""

    def __init__(self, env: str, kinds: list[str] | tuple[str, ...] = ()) -> None:
        what = f"objects ({', '.join(kinds)})" if kinds else "objects"
        super().__init__(
            f"{env} holds {what} but no Atlas migration history",
            hint=(
                f"if another tool (Alembic) built it, adopt it: inv migrate.baseline --env {env} --dry-run, then "
                "without --dry-run"
            ),
        )
