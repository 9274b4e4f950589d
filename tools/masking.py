"""Masking: one function, `mask`, for every line the workflow prints (tasks.py applies it to
all output through `MaskingWriter`, see config.masked_output).

Stdlib only: `inv migrate.status` must stay fast.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, TextIO

# One function, `mask`, for every line the workflow prints (tasks.py applies it to all output).
# Two layers:
# 1. URL passwords, whatever they hold: in `scheme://user:PASSWORD@host/db` the password is all
#    from after `user:` up to the LAST `@` before the host (the last `@` followed by
#    `host[:port]/` or `?`, else the last `@`) and before the next URL on the line (raw `%`, spaces,
#    quotes, `@`, Atlas's `\"` escaping, percent-encoded or not). Over-masking is preferred to
#    a leak. Also `password=...` in libpq conninfo text.
# 2. Every known password value verbatim (raw, percent-decoded, percent-encoded, escaped):
#    values of 4 characters or more wherever they appear, unless all digits; shorter values and
#    numbers only where they stand alone (not inside a longer word or number), and numbers of
#    fewer than 4 digits not at all, so that a tiny password does not blank every `1` or `ab`
#    of unrelated text, nor a numeric one the digits of versions (layer 1 still masks them in URLs).

MASK = "****"
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://")
_USERINFO = re.compile(r'[^:/@\s"\\]*:')
_PORT_LIKE = re.compile(r"\d{1,5}(?:[/?]|$)")
_HOST_THEN_PATH = re.compile(r"""[^\s/?#@"'\\]+[/?]""")
_CONNINFO_PASSWORD = re.compile(r"""(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'"]+)""")
SHORT_SECRET = 4


def _url_password_spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of the password of every URL on one line."""
    starts = [m.end() for m in _SCHEME.finditer(line)]
    scheme_starts = [m.start() for m in _SCHEME.finditer(line)]
    spans = []
    for i, after_scheme in enumerate(starts):
        limit = scheme_starts[i + 1] if i + 1 < len(starts) else len(line)
        user = _USERINFO.match(line, after_scheme, limit)
        if not user or _PORT_LIKE.match(line, user.end(), limit):
            continue  # no user:password, or `host:port/...`
        ats = [i for i in range(user.end(), limit) if line[i] == "@"]
        # The host is the one followed by /dbname (or ?options): an address later in the text
        # (user@example.com) is not it. Without such a host, the last `@`.
        hosted = [i for i in ats if _HOST_THEN_PATH.match(line, i + 1, limit)]
        if ats:
            spans.append((user.end(), (hosted or ats)[-1]))
    return spans


def url_password(value: str) -> str:
    """The password of a URL as written (raw, even when the URL does not parse), or ''."""
    spans = _url_password_spans(value.strip())
    return value.strip()[spans[0][0] : spans[0][1]] if spans else ""


def secret_forms(secret: str) -> set[str]:
    """The ways a password can reach the screen: raw, percent-decoded and -encoded, escaped."""
    from urllib.parse import quote, quote_plus, unquote

    forms = {secret, unquote(secret), secret.replace('"', '\\"'), secret.replace("\\", "\\\\").replace('"', '\\"')}
    for form in list(forms):
        encoded = quote(form, safe="")
        forms |= {encoded, quote_plus(form, safe=""), re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    return {f for f in forms if f}


@functools.lru_cache(maxsize=64)
def _secret_patterns(secrets: tuple[str, ...]) -> re.Pattern | None:
    alternatives = []
    for form in sorted({f for s in secrets if s for f in secret_forms(s)}, key=len, reverse=True):
        if len(form) >= SHORT_SECRET and not form.isdigit():
            alternatives.append(re.escape(form))
        elif len(form) >= SHORT_SECRET or not form.isdigit():  # a number only where it stands alone
            alternatives.append(r"(?<![^\W_])" + re.escape(form) + r"(?![^\W_])")
    return re.compile("|".join(alternatives)) if alternatives else None


def mask(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Hide the password of every URL in `text`, and every form of the given secret strings."""
    lines = text.splitlines(keepends=True)
    out = []
    for line in lines:
        pos, parts = 0, []
        for start, end in _url_password_spans(line):
            parts += [line[pos:start], MASK]
            pos = end
        parts.append(line[pos:])
        out.append("".join(parts))
    masked = _CONNINFO_PASSWORD.sub(lambda m: m.group(1) + MASK, "".join(out))
    pattern = _secret_patterns(tuple(sorted(set(secrets))))
    return pattern.sub(MASK, masked) if pattern else masked


def known_secrets(values: dict[str, str]) -> tuple[str, ...]:
    """Every password in `values` (environment + .env): *PASSWORD* variables and the password of
    every *_URL variable, parseable or not."""
    found = set()
    for key, value in values.items():
        if not value:
            continue
        if "PASSWORD" in key.upper():
            found.add(value)
        if key.upper().endswith("URL"):
            found.add(url_password(value))
    return tuple(sorted(s for s in found if s))


class MaskingWriter:
    """A text stream that masks what goes through it, one whole line at a time."""

    def __init__(self, stream: TextIO, mask_fn: Callable[[str], str]) -> None:
        self._stream, self._mask, self._pending = stream, mask_fn, ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self._stream.write(self._mask(done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self._stream.write(self._mask(self._pending))
            self._pending = ""
        self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
