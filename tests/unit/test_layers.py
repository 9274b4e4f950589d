"""The house of tools/ stays one-way: every module imports only from its own layer or below,
and no import circle forms among them (function-local imports included). See README.md,
"How it is built"."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# 1 ground, 2 adapters, 3 the migrations directory, 4 operations (5 is tasks.py, the menu).
LAYERS = {
    "errors": 1,
    "urls": 1,
    "masking": 1,
    "config": 1,
    "console": 1,
    "signals": 1,
    "catalog": 1,
    "corrections": 1,
    "schema_statements": 1,
    "dump_schema": 1,
    "schemagraph": 1,
    "erdrender": 1,
    "outputs": 1,
    "children": 1,
    "timings": 1,
    "lintscope": 1,
    "pg": 2,
    "envfile": 2,
    "ownership": 2,
    "scratch_runs": 2,
    "atlas": 2,
    "gitbase": 2,
    "stack": 2,
    "stack_common": 2,
    "compose_stack": 2,
    "local_stack": 2,
    "dump_runner": 2,
    "pgcluster": 2,
    "pgserver": 2,
    "docker_setup": 2,
    "docker_images": 2,
    "migrations": 3,
    "scratch": 3,
    "snapcache": 3,
    "staging": 3,
    "preconditions": 3,
    "datatests": 3,
    "schema": 4,
    "diff": 4,
    "status": 4,
    "apply": 4,
    "check": 4,
    "safety": 4,
    "atlaslint": 4,
    "fidelity": 4,
    "baseline": 4,
    "downplan": 4,
    "down": 4,
    "downloss": 4,
    "downrun": 4,
    "prove": 4,
    "renumber": 4,
    "setup": 4,
    "doctor": 4,
    "dev": 4,
    "reset": 4,
    "erd": 4,
    "report": 4,
}
MENU = 5


def tools_imports(source: str, modules: set[str]) -> list[tuple[str, int, bool]]:
    """(imported tools module, line, at top level) for every import of a tools module."""
    tree = ast.parse(source)
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[1] for alias in node.names if alias.name.startswith("tools.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "tools":
                names = [alias.name for alias in node.names]
            elif node.module.startswith("tools."):
                names = [node.module.split(".")[1]]
        out += [(name, node.lineno, id(node) in top) for name in names if name in modules]
    return out


def graph_of(sources: dict[str, str]) -> dict[str, list[tuple[str, int, bool]]]:
    return {name: tools_imports(text, set(sources)) for name, text in sources.items()}


def upward(graph: dict, layers: dict[str, int]) -> list[str]:
    """Imports that go to a higher layer."""
    return [
        f"{mod} (layer {layers[mod]}) line {line} imports {target} (layer {layers[target]})"
        for mod, imports in sorted(graph.items())
        for target, line, _ in imports
        if target != mod and layers[target] > layers[mod]
    ]


def cycles(graph: dict) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module, or a module
    importing itself)."""
    edges = {mod: {target for target, _, _ in imports} for mod, imports in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def sources() -> dict[str, str]:
    return {path.stem: path.read_text() for path in sorted((ROOT / "tools").glob("*.py")) if path.stem != "__init__"}


def test_every_tools_module_has_a_layer():
    assert sorted(set(sources()) - set(LAYERS)) == [], "add the new module to LAYERS (and to README.md's map)"
    assert sorted(set(LAYERS) - set(sources())) == [], "a module in LAYERS no longer exists"


def test_tools_import_only_their_own_layer_or_below():
    assert upward(graph_of(sources()), LAYERS) == []


def test_no_import_circle_among_tools_and_tasks():
    graph = graph_of({**sources(), "tasks": (ROOT / "tasks.py").read_text()})
    assert cycles(graph) == []


def test_tools_import_tools_modules_at_the_top_of_the_file():
    local = [
        f"{mod} line {line} imports {target}"
        for mod, imports in sorted(graph_of(sources()).items())
        for target, line, at_top in imports
        if not at_top
    ]
    assert local == [], "import tools modules at the top: a file's head tells what it depends on"


def test_the_menu_loads_only_what_list_and_status_need():
    """tasks.py imports the other operations inside their tasks (see its head): `inv --list` and
    `inv migrate.status` start without them, and without psycopg, SQLAlchemy or pglast."""
    code = (
        "import sys, tasks; print(' '.join(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('tools', 'psycopg', 'sqlalchemy', 'pglast'))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert loaded == [
        "tools",
        "tools.atlas",
        "tools.children",
        "tools.config",
        "tools.console",
        "tools.errors",
        "tools.masking",
        "tools.migrations",
        "tools.signals",
        "tools.status",
        "tools.timings",
        "tools.urls",
    ]


# --- the checks themselves fail on what they are for ------------------------------------------

FAKE = {
    "errors": "",
    "pg": "from tools.errors import WorkflowError\n",
    "status": "from tools import pg\n",
}


def test_an_upward_import_is_found():
    bad = dict(FAKE, pg=FAKE["pg"] + "def f():\n    from tools.status import status\n")
    found = upward(graph_of(bad), {"errors": 1, "pg": 2, "status": 4})
    assert found == ["pg (layer 2) line 3 imports status (layer 4)"]
    assert upward(graph_of(FAKE), {"errors": 1, "pg": 2, "status": 4}) == []


@pytest.mark.parametrize(
    "extra, circle",
    [
        ("from tools import status\n", ["pg", "status"]),
        ("import tools.pg\n", ["pg"]),
    ],
    ids=["two-modules", "itself"],
)
def test_an_import_circle_is_found(extra, circle):
    assert cycles(graph_of(dict(FAKE, pg=FAKE["pg"] + extra))) == [circle]
    assert cycles(graph_of(FAKE)) == []
