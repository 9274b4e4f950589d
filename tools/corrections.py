"""Correct what Atlas v0.13.1 leaves out of a migration, or refuse loudly.

Atlas silently ignores some object kinds in a SQL schema (their statements are found by
tools/schema_statements.py) and gets some details wrong (primary-key names, UNIQUE constraints
created as plain unique indexes, FOREIGN KEY deferrability, defaults on declared sequences).
Comparing catalogs (tools/catalog.py) tells exactly what differs; this module turns each
difference it can fix exactly into SQL and returns the rest as unfixable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tools import timings
from tools.catalog import Difference, Snapshot
from tools.schema_statements import BEFORE_KINDS, IGNORED_KINDS, idempotent, ignored_statements

HAND_WRITTEN = "write it by hand: inv migrate.new --name <change>, edit the file, inv migrate.hash"


@dataclass
class Plan:
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.before or self.after)


def q(*parts: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in parts)


def _find(snapshot: dict, kind: str, name: str) -> str | None:
    objects = snapshot.get(kind, {})
    if kind == "function":
        return next((k for k in objects if k.startswith(name)), None)
    return name if name in objects else None


@timings.timed("corrections planned")
def plan_ignored(history: Snapshot, models: Snapshot, schema_sql: str) -> Plan:
    """SQL for the ignored-kind objects the models have and the history lacks; refusals for the rest."""
    plan = Plan()
    statements = ignored_statements(schema_sql)
    for st in statements:
        if st.kind == "rls":
            table = models.get("table", {}).get(st.name, {})
            old = history.get("table", {}).get(st.name)
            flags = ("row_security", "force_row_security")
            if old is None or tuple(old.get(f) for f in flags) != tuple(table.get(f) for f in flags):
                plan.after.append(st.sql)
            continue
        key = _find(models, st.kind, st.name)
        if key is None:
            continue  # created then dropped inside schema.sql, or not a real object
        if key not in history.get(st.kind, {}):
            if st.kind in BEFORE_KINDS:
                plan.before.append(idempotent(st.sql))
            else:
                plan.after.append(st.sql)
        elif st.kind == "sequence" and (alter := _alter_sequence(key, history[st.kind][key], models[st.kind][key])):
            plan.after.append(alter)
        elif history[st.kind][key] != models[st.kind][key]:
            plan.unfixable.append(
                f"{st.kind} {key.rstrip('(')} changed in the models, and Atlas cannot carry changes to a {st.kind}: "
                f"{HAND_WRITTEN}"
            )
    for kind in IGNORED_KINDS:
        for key in history.get(kind, {}):
            if key not in models.get(kind, {}) and not _owned_sequence(history, kind, key):
                plan.unfixable.append(
                    f"{kind} {key} was removed from the models, and Atlas cannot drop a {kind}: {HAND_WRITTEN}"
                )
    return plan


def _alter_sequence(key: str, old: dict, new: dict) -> str | None:
    """ALTER SEQUENCE for a declared sequence whose options changed (its current value is kept)."""
    if old.get("owned_by") != new.get("owned_by"):
        return None
    clauses = []
    if old.get("type") != new.get("type"):
        clauses.append(f"AS {new['type']}")
    if old.get("increment") != new.get("increment"):
        clauses.append(f"INCREMENT BY {new['increment']}")
    if old.get("min") != new.get("min"):
        clauses.append(f"MINVALUE {new['min']}")
    if old.get("max") != new.get("max"):
        clauses.append(f"MAXVALUE {new['max']}")
    if old.get("start") != new.get("start"):
        clauses.append(f"START WITH {new['start']}")
    if old.get("cycle") != new.get("cycle"):
        clauses.append("CYCLE" if new.get("cycle") else "NO CYCLE")
    if not clauses:
        return None
    return f"ALTER SEQUENCE {q(*_split(key, 2))} {' '.join(clauses)};"


def _owned_sequence(snapshot: dict, kind: str, key: str) -> bool:
    """Serial columns' sequences come and go with their columns: Atlas handles those."""
    return kind == "sequence" and bool(snapshot["sequence"][key].get("owned_by"))


_DEFERRABILITY = re.compile(r"\s+(NOT DEFERRABLE|DEFERRABLE|INITIALLY DEFERRED|INITIALLY IMMEDIATE)\b")


def _split(name: str, parts: int) -> list[str]:
    return name.split(".", parts - 1)


@timings.timed("corrections planned")
def plan_details(replayed: Snapshot, models: Snapshot, differences: list[Difference]) -> Plan:
    """SQL for the differences Atlas's own output gets wrong; refusals for everything left."""
    plan = Plan()
    handled: dict[int, Difference] = {}

    def take(*diffs: Difference) -> None:
        for d in diffs:
            handled[id(d)] = d

    only_left = {(d.kind, d.name): d for d in differences if d.field is None and d.left is not None}
    only_right = {(d.kind, d.name): d for d in differences if d.field is None and d.right is not None}

    # Primary keys: Atlas writes PRIMARY KEY (...) without the declared name.
    for (kind, name), d in list(only_right.items()):
        if kind != "constraint" or d.right.get("type") != "p":
            continue
        schema, table, conname = _split(name, 3)
        match = next(
            (
                ln
                for (k, n), ln in only_left.items()
                if k == "constraint" and ln.left.get("type") == "p" and n.startswith(f"{schema}.{table}.")
            ),
            None,
        )
        if match is None:
            continue
        old = match.name.split(".")[-1]
        plan.after.append(f"ALTER TABLE {q(schema, table)} RENAME CONSTRAINT {q(old)} TO {q(conname)};")
        take(d, match)
        for key in (("index", f"{schema}.{old}"), ("index", f"{schema}.{conname}")):
            if key in only_left:
                take(only_left[key])
            if key in only_right:
                take(only_right[key])

    # UNIQUE constraints: Atlas writes a unique index of the same name.
    for (kind, name), d in list(only_right.items()):
        if kind != "constraint" or d.right.get("type") != "u":
            continue
        schema, table, conname = _split(name, 3)
        idx = next(
            (
                x
                for x in differences
                if x.kind == "index" and x.name == f"{schema}.{conname}" and x.field == "backs_constraint"
            ),
            None,
        )
        if idx is None:
            continue
        clause = " ".join(m.group(1) for m in _DEFERRABILITY.finditer(d.right.get("definition", "")))
        plan.after.append(
            f"ALTER TABLE {q(schema, table)} ADD CONSTRAINT {q(conname)} UNIQUE USING INDEX "
            f"{q(conname)}{' ' + clause if clause else ''};"
        )
        take(d, idx)

    for d in differences:
        if id(d) in handled or d.field is None:
            continue
        # Foreign keys: Atlas drops DEFERRABLE / INITIALLY DEFERRED.
        if (
            d.kind == "constraint"
            and d.field == "definition"
            and replayed["constraint"][d.name].get("type") == "f"
            and _DEFERRABILITY.sub("", d.left or "") == _DEFERRABILITY.sub("", d.right or "")
        ):
            schema, table, conname = _split(d.name, 3)
            wanted = " ".join(m.group(1) for m in _DEFERRABILITY.finditer(d.right)) or "NOT DEFERRABLE"
            plan.after.append(f"ALTER TABLE {q(schema, table)} ALTER CONSTRAINT {q(conname)} {wanted};")
            take(d)
        # Any other constraint whose definition changed under the same name (e.g. a CHECK):
        # Atlas compares constraints by name only and misses it.
        elif d.kind == "constraint" and d.field == "definition":
            schema, table, conname = _split(d.name, 3)
            plan.after.append(f"ALTER TABLE {q(schema, table)} DROP CONSTRAINT {q(conname)};")
            plan.after.append(f"ALTER TABLE {q(schema, table)} ADD CONSTRAINT {q(conname)} {d.right};")
            take(d)
        # Column defaults: e.g. a declared sequence Atlas rewrote to a serial-style one.
        elif d.kind == "column" and d.field == "default":
            schema, table, column = _split(d.name, 3)
            action = f"SET DEFAULT {d.right}" if d.right is not None else "DROP DEFAULT"
            plan.after.append(f"ALTER TABLE {q(schema, table)} ALTER COLUMN {q(column)} {action};")
            take(d)
        # A column Atlas made serial: same type underneath, the sequence is dropped below.
        elif d.kind == "column" and d.field == "type":
            pass

    # Serial-style sequences Atlas invented for a column whose default we just pointed elsewhere.
    for (kind, name), d in only_left.items():
        if kind == "sequence" and id(d) not in handled and d.left.get("owned_by"):
            owner = d.left["owned_by"]
            if any(x.kind == "column" and x.name == owner and x.field == "default" for x in handled.values()):
                plan.after.append(f"DROP SEQUENCE {q(*_split(name, 2))};")
                take(d)

    for d in differences:
        if id(d) not in handled:
            plan.unfixable.append(str(d))
    return plan


def render(title: str, statements: list[str]) -> str:
    if not statements:
        return ""
    lines = [f"-- {title}"]
    lines += statements
    return "\n".join(lines) + "\n"
