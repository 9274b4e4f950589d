"""Non-ASCII text in the models (comments, enum labels) goes through diff, apply and check."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

COMMENT = "Réservé ✓ 注文"
LABEL = "heureux ☺"


def test_non_ascii_comment_and_enum_label(local_project):
    p = local_project
    path = p.root / "app/models/customers.py"
    text = path.read_text()
    text = text.replace('"People and companies that place orders"', repr(COMMENT))
    text = text.replace(
        "from sqlalchemy import BigInteger, Boolean, String, text",
        "from sqlalchemy import BigInteger, Boolean, Enum, String, text",
    )
    text = text.replace(
        "    is_active: Mapped[bool]",
        f"    mood: Mapped[str | None] = mapped_column(Enum({LABEL!r}, 'triste', name='mood'))\n    is_active: "
        "Mapped[bool]",
        1,
    )
    path.write_text(text)
    assert p.inv("db.up").returncode == 0
    before = set(p.files())
    diff = p.inv("migrate.diff", "--name", "unicode_text")
    assert diff.returncode == 0, diff.stdout + diff.stderr
    assert "Traceback" not in diff.stderr and "UnicodeDecodeError" not in diff.stderr
    (new,) = sorted(set(p.files()) - before)
    sql = p.files()[new]
    assert f"'{COMMENT}'" in sql and f"'{LABEL}'" in sql
    applied = p.inv("migrate.apply")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    check = p.inv("migrate.check", "--no-base")  # a copy without git history
    assert check.returncode == 0, check.stdout + check.stderr
    from tests.integration.test_workflow import psql

    assert psql(p, "SELECT obj_description('public.customers'::regclass)") == COMMENT
    assert LABEL in psql(p, "SELECT enumlabel FROM pg_enum")
