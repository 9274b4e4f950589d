"""One masking function for every printed line: URL passwords of any form, known values verbatim."""

from __future__ import annotations

import io
import sys
from urllib.parse import quote

import pytest

from tools.config import masked_output
from tools.masking import MaskingWriter, known_secrets, mask, url_password

NASTY = ["Secr3t%zzTop", "pa ss", 'pa"ss', "p@ss@word", "%41%42", "Ünï"]


def forms_in_text(pw: str) -> list[str]:
    """How a password reaches the screen: URLs raw and encoded, Atlas's escaping, lib/pq's quoting."""
    enc = quote(pw, safe="")
    esc = pw.replace('"', '\\"')
    return [
        f"postgres://app:{pw}@127.0.0.1:5433/app?sslmode=disable",
        f"postgres://app:{enc}@127.0.0.1:5433/app?sslmode=disable",
        f'Error: parse "postgres://app:{esc}@127.0.0.1:9/app?sslmode=disable": invalid URL escape "%zz"',
        f'Error: "postgres://app:{esc}@h:5432/db" and postgres://other:{enc}@h2/db2',
        f'pq: invalid percent-encoded token: "{pw}"',
        f"connection to server failed: password={pw} host=h",
        f"the password is {pw}.",
        f"{enc} alone",
    ]


@pytest.mark.parametrize("pw", NASTY, ids=["raw-percent", "space", "quote", "at-signs", "encoded-looking", "non-ascii"])
def test_no_form_of_a_nasty_password_survives(pw):
    secrets = known_secrets({"DATABASE_URL": f"postgres://app:{pw}@h/db", "POSTGRES_PASSWORD": pw})
    assert pw in secrets
    for text in forms_in_text(pw):
        out = mask(text, secrets)
        assert pw not in out and quote(pw, safe="") not in out, (text, out)
        assert pw.replace('"', '\\"') not in out


@pytest.mark.parametrize("pw", NASTY)
def test_url_layer_alone_masks_any_password(pw):
    """Without knowing the value: the URL form is enough (raw or percent-encoded)."""
    for value in (pw, quote(pw, safe="")):
        out = mask(f"x postgres://app:{value}@127.0.0.1:5433/app?sslmode=disable y")
        assert out == "x postgres://app:****@127.0.0.1:5433/app?sslmode=disable y"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("postgres://u:p@ss@word@h/db and user@x.com", "postgres://u:****@h/db and user@x.com"),
        ("a postgres://h:5432/db b@c", "a postgres://h:5432/db b@c"),
        ("postgres://nopass@h/db", "postgres://nopass@h/db"),
        ('"postgres://u:a\\"b@h/db"', '"postgres://u:****@h/db"'),
        ("line1 postgres://u:x y@h/d\nline2 user@host", "line1 postgres://u:****@h/d\nline2 user@host"),
        ("http://example.com:8080/docs a@b", "http://example.com:8080/docs a@b"),
    ],
    ids=["at-in-password-then-email", "host-port", "no-password", "atlas-escape", "per-line", "port-not-password"],
)
def test_url_layer(text, expected):
    assert mask(text) == expected


def test_url_password_of_a_url_that_does_not_parse():
    assert url_password("postgres://u:Secr3t%zzTop@h:99999/db") == "Secr3t%zzTop"
    assert url_password("postgres://u:p@ss@word@h/db") == "p@ss@word"
    assert url_password("postgres://u@h/db") == ""


def test_tiny_passwords_do_not_blank_unrelated_text():
    text = "1 migration(s) applied; version 20260101000100; table orders; ab"
    assert mask(text, ("1", "ab", "0001")) == "1 migration(s) applied; version 20260101000100; table orders; ****"
    assert mask("password 0001 and postgres://u:1@h/d", ("0001", "1")) == "password **** and postgres://u:****@h/d"
    assert mask("Ünï and xÜnïx", ("Ünï",)) == "**** and xÜnïx"


def test_known_secrets_reads_every_password_and_url():
    values = {
        "POSTGRES_PASSWORD": "a",
        "PGPASSWORD": "b",
        "STAGING_DATABASE_URL": "postgres://u:c d@h/x",
        "DEV_DATABASE_URL": "not a url",
        "DB_PORT": "5433",
    }
    assert known_secrets(values) == ("a", "b", "c d")


def test_writer_masks_whole_lines_even_when_written_in_pieces():
    out = io.StringIO()
    writer = MaskingWriter(out, lambda t: mask(t, ("topsecret",)))
    writer.write("postgres://u:top")
    writer.write("secret@h/db\nnext top")
    assert out.getvalue() == "postgres://u:****@h/db\n"
    writer.write("secret\n")
    writer.write("tail topsecret")
    writer.flush()
    assert out.getvalue() == "postgres://u:****@h/db\nnext ****\ntail ****"


def test_masked_output_wraps_and_restores(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("STAGING_DATABASE_URL", "postgres://u:pa ss@h/db")
    before = sys.stdout, sys.stderr
    with masked_output(tmp_path) as m:
        print("url postgres://u:pa ss@h/db and pa ss")
        print("to stderr: pa ss", file=sys.stderr)
        assert m("pa ss") == "****"
    assert (sys.stdout, sys.stderr) == before
    captured = capsys.readouterr()
    assert captured.out == "url postgres://u:****@h/db and ****\n" and captured.err == "to stderr: ****\n"


def test_the_task_edge_masks_output_and_the_error_line(monkeypatch, capsys):
    from invoke import Exit

    import tasks
    from tools.errors import WorkflowError

    monkeypatch.setenv("STAGING_DATABASE_URL", "postgres://u:pa ss@h/db")

    @tasks.edge
    def failing(c):
        print("trying postgres://u:pa ss@h/db")
        raise WorkflowError('atlas: parse "postgres://u:pa ss@h/db": invalid userinfo', hint="pa ss")

    @tasks.edge
    def exiting(c):
        raise Exit("error: pa ss", code=3)

    with pytest.raises(Exit) as exc:
        failing(None)
    assert exc.value.message == 'error: atlas: parse "postgres://u:****@h/db": invalid userinfo: ****'
    assert capsys.readouterr().out == "trying postgres://u:****@h/db\n"
    with pytest.raises(Exit) as exc:
        exiting(None)
    assert (exc.value.message, exc.value.code) == ("error: ****", 3)


@pytest.mark.parametrize("pw", [p for p in NASTY if p != "%41%42"])
def test_a_url_that_does_not_parse_is_named_by_its_variable_only(pw):
    from tools.errors import WorkflowError
    from tools.urls import parse_url

    with pytest.raises(WorkflowError) as exc:
        parse_url(f"postgres://app:{pw}@h:5432/db", "STAGING_DATABASE_URL")
    assert str(exc.value).startswith(
        "STAGING_DATABASE_URL is not a valid URL: it holds a character that must be percent-encoded"
    )
    assert pw not in str(exc.value) and "postgres://" not in str(exc.value)
    assert parse_url(f"postgres://app:{quote(pw, safe='')}@h:5432/db", "X").password == quote(pw, safe="")
