"""What the workflow cannot do, it says: unreadable target columns, scratch databases left."""

from __future__ import annotations

from tools import safety, scratch_runs

UNREACHABLE = "postgres://u:pw@127.0.0.1:1/app?sslmode=disable"  # nothing listens on port 1


def test_type_changes_say_when_the_target_columns_cannot_be_read(tmp_path):
    path = tmp_path / "20260101000000_narrow.sql"
    path.write_text("ALTER TABLE t ALTER COLUMN c TYPE smallint;\n")
    said = []
    assert safety.type_change_findings([path], UNREACHABLE, log=said.append) == []
    assert len(said) == 1
    assert said[0].startswith("note: the target's column types could not be read (")
    assert said[0].endswith("type changes in the pending files were not checked for narrowing")
    assert "pw" not in said[0].replace("password", "")


def test_without_a_target_nothing_is_said(tmp_path):
    path = tmp_path / "20260101000000_narrow.sql"
    path.write_text("ALTER TABLE t ALTER COLUMN c TYPE smallint;\n")
    said = []
    assert safety.type_change_findings([path], None, log=said.append) == []
    assert said == []


def test_a_scratch_database_that_cannot_be_dropped_is_reported():
    said = []
    left = ["schemaflow_scratch_0a1b2c3d_replay", "schemaflow_scratch_0a1b2c3d_models"]
    scratch_runs._drop_all(UNREACHABLE, None, left, log=said.append)
    assert len(said) == 1
    assert said[0].startswith(
        "note: could not drop scratch database(s) schemaflow_scratch_0a1b2c3d_replay, "
        "schemaflow_scratch_0a1b2c3d_models ("
    )
    assert said[0].endswith("the next run drops them once this one is gone")


def test_nothing_is_said_when_every_scratch_database_is_dropped():
    said = []
    scratch_runs._drop_all(UNREACHABLE, None, [], log=said.append)
    assert said == []
