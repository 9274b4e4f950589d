"""tools/timings.py: nested steps count their own time once, and the lines add up to the run."""

from __future__ import annotations

import re
import time

from tools import timings


def test_a_nested_step_is_not_counted_twice():
    timings.reset()
    with timings.step("outer"):
        time.sleep(0.05)
        with timings.step("inner"):
            time.sleep(0.1)
    spent = dict(timings._totals.seconds)
    assert 0.09 <= spent["inner"] < 0.3
    assert 0.04 <= spent["outer"] < 0.09, "the outer step's own time excludes the inner one"


def test_the_lines_add_up_to_the_whole_run_with_counts():
    timings.reset()
    for _ in range(3):
        with timings.step("repeated"):
            time.sleep(0.01)
    time.sleep(0.03)  # between the steps: `other`
    lines = timings.lines()
    total = float(re.match(r"timings: (\d+) ms in all", lines[0]).group(1))
    parts = [float(m.group(1)) for ln in lines[1:] if (m := re.search(r"\s(\d+) ms", ln))]
    assert abs(sum(parts) - total) <= len(parts), lines  # rounding only
    assert any("repeated" in ln and ln.rstrip().endswith("x3") for ln in lines)
    assert any(ln.strip().startswith("other") and float(re.search(r"(\d+) ms", ln).group(1)) >= 25 for ln in lines)


def test_the_switch(monkeypatch):
    monkeypatch.delenv(timings.ENV_SWITCH, raising=False)
    assert not timings.enabled() and timings.enabled(True)
    monkeypatch.setenv(timings.ENV_SWITCH, "1")
    assert timings.enabled()


def test_the_process_age_is_read_on_linux():
    age = timings.process_age()
    assert age is None or 0 <= age < 24 * 3600
