"""Long steps announce themselves, tick while they run and report their duration (no TTY)."""

from __future__ import annotations

import time

from tools import console as progress_mod


def test_plain_lines_without_a_terminal(monkeypatch):
    monkeypatch.setattr(progress_mod, "TICK", 0.05)
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: False)
    lines = []
    with progress_mod.progress(lines.append, "Building things"):
        time.sleep(0.18)
    assert lines[0] == "Building things..."
    assert any(ln.startswith("  still building things (") for ln in lines[1:])


def test_short_steps_stay_quiet(monkeypatch):
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: False)
    lines = []
    with progress_mod.progress(lines.append, "Quick"):
        pass
    assert lines == ["Quick..."]
