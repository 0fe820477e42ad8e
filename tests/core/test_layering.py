"""Imports point down, and only the core reads the result store's files.

The layers, lowest first (docs/architecture.md "Layers"):

- ``kvmnetlab`` (the core: store, formats, campaign, errors) imports nothing of the project;
- ``collectors`` and ``analysis`` import the core, and not each other;
- ``nightly`` sits on top of them, with plain imports;
- the collection's plugins (``ansible_collections.kvmnetlab.lab.plugins``) may import any of
  these, except the modules and module_utils, which run on lab hosts and import none.

The checker reads the sources with :mod:`ast` (nothing is imported): every ``import``,
``from ... import`` (at any depth, inside functions too) and
``importlib.import_module("...")`` / ``__import__("...")`` call with a literal name is an
edge of the module graph; a dynamic import whose name is not a literal is refused, since
the graph cannot see it. An edge that points up or sideways, or a circle of modules, is a
finding. Outside the core, building a path to ``manifest.json`` or to a ``data/*.parquet``
table is a finding too: those files are read (and written) through the core only.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = "kvmnetlab"
#: package -> layer; a package may import only packages of a lower layer (and itself)
LAYERS = {"kvmnetlab": 0, "collectors": 1, "analysis": 1, "nightly": 2,
          "ansible_collections": 3}
PACKAGES = ("kvmnetlab", "collectors", "analysis", "nightly")
COLLECTION = Path("collections")
#: parts of the collection that run on lab hosts: they import none of PACKAGES
HOST_SIDE = ("ansible_collections.kvmnetlab.lab.plugins.modules",
             "ansible_collections.kvmnetlab.lab.plugins.module_utils")
DYNAMIC = {"import_module", "__import__"}
TABLE = re.compile(r"(^|/)data/[^/]*\.parquet$")
#: calls whose arguments are a path
PATH_CALLS = {"join", "Path", "PurePath", "open", "read_parquet", "read_table", "ParquetFile",
              "read_schema", "read_metadata", "read_pandas"}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool


def modules(root: Path) -> dict[str, Module]:
    """Every module of the project's packages and of the collection under ``root``."""
    found: dict[str, Module] = {}
    bases = [(root, root / package) for package in PACKAGES]
    bases.append((root / COLLECTION, root / COLLECTION / "ansible_collections"))
    for base, top in bases:
        if not top.is_dir():
            continue
        for path in sorted(top.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            found[".".join(parts)] = Module(".".join(parts), path, is_package)
    return found


def package_of(name: str) -> str:
    return name.split(".")[0]


def _known(name: str, known: dict[str, Module]) -> str | None:
    """The longest prefix of the dotted ``name`` that is a module of ``known``."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def _absolute(module: Module, level: int, name: str | None) -> str:
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[:len(package) - (level - 1)] if level > 1 else package
    return ".".join([*base, *([name] if name else [])])


def imports(module: Module, known: dict[str, Module]) -> tuple[list[tuple[str, int]], list[str]]:
    """(imported module, line) for each project import of ``module``, and its problems
    (dynamic imports the graph cannot see)."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    edges: list[tuple[str, int]] = []
    problems: list[str] = []

    def add(name: str, line: int) -> None:
        target = _known(name, known)
        if target is not None and target != module.name:
            edges.append((target, line))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node.level, node.module) if node.level else node.module
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in known else base, node.lineno)
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called not in DYNAMIC:
                continue
            first = node.args[0] if node.args else None
            prefix = (first.values[0].value if isinstance(first, ast.JoinedStr) and first.values
                      and isinstance(first.values[0], ast.Constant) else "")
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                add(first.value, node.lineno)
            elif prefix.endswith(".") and prefix.count(".") > 1:
                # f"package.sub.{name}": some module of that named package
                add(prefix.rstrip("."), node.lineno)
            else:
                problems.append(f"{module.path}:{node.lineno}: {called}() of a name that is "
                                "not a literal: an import the graph cannot see")
    return edges, problems


def graph(root: Path) -> tuple[dict[str, Module], dict[str, list[tuple[str, int]]], list[str]]:
    known = modules(root)
    edges: dict[str, list[tuple[str, int]]] = {}
    problems: list[str] = []
    for name, module in known.items():
        edges[name], found = imports(module, known)
        problems += found
    return known, edges, problems


def allowed(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported`` (both of the project)."""
    source, target = package_of(importer), package_of(imported)
    if importer.startswith(HOST_SIDE):
        return target == "ansible_collections"
    return source == target or LAYERS[target] < LAYERS[source]


def _why(importer: str, imported: str) -> str:
    if importer.startswith(HOST_SIDE):
        return "which a module run on lab hosts may not import"
    return (f"which is not below it ({package_of(importer)} may not import "
            f"{package_of(imported)})")


def upward(known: dict[str, Module], edges: dict[str, list[tuple[str, int]]]) -> list[str]:
    return [f"{known[importer].path}:{line}: {importer} imports {imported}, "
            f"{_why(importer, imported)}"
            for importer, targets in sorted(edges.items())
            for imported, line in targets if not allowed(importer, imported)]


def cycles(edges: dict[str, list[tuple[str, int]]]) -> list[list[str]]:
    """The circles of the graph: its strongly connected components of more than one module
    (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target, _ in edges.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


# --------------------------------------------------------------------------- store files


def _strings(node: ast.AST, names: dict[str, list[list[str]]], depth: int = 0) -> list[list[str]]:
    """The path pieces ``node`` may spell, left to right, one list per possibility: string
    literals, the literal parts of f-strings (``{}`` for a field), names bound to such
    expressions in the module, and ``MANIFEST`` for the manifest's name."""
    if depth > 8:
        return [[]]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [[node.value]]
    if isinstance(node, ast.JoinedStr):
        return [["".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)]]
    if isinstance(node, ast.Name | ast.Attribute):
        ident = node.id if isinstance(node, ast.Name) else node.attr
        if ident == "MANIFEST":
            return [["manifest.json"]]
        if isinstance(node, ast.Name) and ident in names:
            return [p for bound in names[ident] for p in _chain(bound, names, depth + 1)]
        if isinstance(node, ast.Attribute):
            return _strings(node.value, names, depth + 1)
        return [[]]
    return [[]]


def _chain(pieces: list, names: dict[str, list[list[str]]], depth: int) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for piece in pieces:
        options = _strings(piece, names, depth) if isinstance(piece, ast.AST) else [[piece]]
        out = [a + b for a in out for b in options][:64]
    return out


def _operands(node: ast.AST) -> list:
    """The operands of a path expression: ``a / b / c``, ``a + b``, ``(a / b).glob(c)``,
    ``os.path.join(a, b)``, ``Path(a, b)``, ``open(a)``, ``pd.read_parquet(a)`` and the
    other Parquet readers."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Add):
        return [*_operands(node.left), *_operands(node.right)]
    if isinstance(node, ast.Call):
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called in ("glob", "rglob") and isinstance(func, ast.Attribute):
            return [*_operands(func.value), *node.args]
        if called in PATH_CALLS:
            return [arg for a in node.args for arg in _operands(a)]
    return [node]


def names_store_file(pieces: list[str]) -> str | None:
    """``manifest.json`` or ``data/*.parquet`` when the path ``pieces`` name one."""
    path = "/".join(p.strip("/") for p in pieces if p)
    if path == "manifest.json" or path.endswith("/manifest.json"):
        return "manifest.json"
    if TABLE.search(path.replace("{}", "x").replace("*", "x")):
        return "data/*.parquet"
    return None


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _own_nodes(scope: ast.AST):
    """The nodes of ``scope`` outside the functions defined in it."""
    for child in ast.iter_child_nodes(scope):
        if not isinstance(child, _FUNCTIONS):
            yield child
            yield from _own_nodes(child)


def _functions_in(scope: ast.AST):
    """The functions defined directly in ``scope`` (not inside another function)."""
    for child in ast.iter_child_nodes(scope):
        if isinstance(child, _FUNCTIONS):
            yield child
        else:
            yield from _functions_in(child)


def _bindings(nodes, outer: dict[str, list[list]]) -> dict[str, list[list]]:
    """``outer`` plus the names the assignments among ``nodes`` bind (a name bound here
    hides the outer binding)."""
    names: dict[str, list[list]] = {}
    for node in nodes:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.setdefault(target.id, []).append(_operands(node.value))
    return {**outer, **names}


def store_reads(module: Module) -> list[str]:
    """Where ``module`` builds a path to manifest.json or a data/*.parquet table. A name
    stands for what it is bound to in its function or, failing that, in an enclosing one
    or the module."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), str(module.path))
    found = []

    def scan(scope: ast.AST, outer: dict[str, list[list]]) -> None:
        own = list(_own_nodes(scope))
        names = _bindings(own, outer)
        for node in own:
            is_path = (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div | ast.Add)
                       ) or (isinstance(node, ast.Call) and _operands(node) != [node])
            if is_path:
                for pieces in _chain(_operands(node), names, 0):
                    what = names_store_file(pieces)
                    if what:
                        found.append(f"{module.path}:{node.lineno}: builds a path to {what} "
                                     f"outside the core ({module.name}); read it through {CORE}")
                        break
        for function in _functions_in(scope):
            scan(function, names)

    scan(tree, {})
    return sorted(set(found))


def findings(root: Path) -> list[str]:
    known, edges, problems = graph(root)
    out = [*problems, *upward(known, edges)]
    out += [f"circle of imports: {' -> '.join(c)}" for c in cycles(edges)]
    for module in known.values():
        if package_of(module.name) != CORE:
            out += store_reads(module)
    return out


# --------------------------------------------------------------------------- the tests


def test_the_project_keeps_its_layers():
    found = findings(ROOT)
    assert not found, "\n".join(found)


def test_the_checker_reads_the_real_tree():
    """The graph is not empty: a checker that finds no module would pass anything."""
    known, edges, _ = graph(ROOT)
    assert {"kvmnetlab.store", "collectors.base", "analysis.load", "nightly.run"} <= set(known)
    assert "kvmnetlab.store_format" in {target for target, _ in edges["analysis.load"]}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_the_checker_finds_an_upward_import_a_circle_and_a_manifest_read(tmp_path):
    _write(tmp_path, {
        "kvmnetlab/__init__.py": "",
        "kvmnetlab/errors.py": """
            def human(n):
                from kvmnetlab.store import human_bytes  # closes a circle with store
                return human_bytes(n)
        """,
        "kvmnetlab/store.py": """
            from kvmnetlab.errors import human

            def human_bytes(n):
                return str(n)
        """,
        "kvmnetlab/campaign.py": """
            def known():
                from collectors import base  # points up
                return base.known()
        """,
        "collectors/__init__.py": "",
        "collectors/base.py": "import importlib\nimportlib.import_module('analysis.load')\n",
        "analysis/__init__.py": "",
        "analysis/load.py": """
            import json

            def manifest(root):
                return json.loads((root / "manifest.json").read_text())

            def table(root, name):
                rel = f"data/{name}.parquet"
                return (root / rel).read_bytes()

            def rtt(folder):
                return pd.read_parquet(f"{folder}/data/rtt.parquet")
        """,
        "nightly/__init__.py": "",
        "nightly/publish.py": """
            import importlib

            def module(name):
                return importlib.import_module(name)
        """,
    })
    found = findings(tmp_path)
    text = "\n".join(found)
    assert "kvmnetlab.campaign imports collectors.base" in text
    assert "collectors.base imports analysis.load" in text  # sideways, through importlib
    assert "circle of imports: kvmnetlab.errors -> kvmnetlab.store" in text
    assert re.search(r"analysis/load\.py:5: builds a path to manifest\.json", text)
    assert re.search(r"analysis/load\.py:9: builds a path to data/\*\.parquet", text)
    assert re.search(r"analysis/load\.py:12: builds a path to data/\*\.parquet", text)
    assert re.search(r"nightly/publish\.py:5: import_module\(\) of a name that is not", text)
    assert len(found) == 7, text


def test_the_checker_accepts_imports_that_point_down(tmp_path):
    _write(tmp_path, {
        "kvmnetlab/__init__.py": "",
        "kvmnetlab/store.py": "MANIFEST = 'manifest.json'\n\ndef load(root):\n"
                              "    return (root / MANIFEST).read_text()\n",
        "collectors/__init__.py": "",
        "collectors/base.py": "from kvmnetlab import store\n",
        "analysis/__init__.py": "",
        "analysis/load.py": """
            import pyarrow.parquet as pq

            from kvmnetlab.store import load

            def catalog(history):  # its own file, not a campaign's table
                file = history / "nights.parquet"
                return pq.read_table(file)

            def rtt(campaign):
                file = campaign.rtt_path
                return file
        """,
        "nightly/__init__.py": "",
        "nightly/run.py": "from analysis import load\nfrom collectors.base import store\n",
        "collections/ansible_collections/kvmnetlab/lab/plugins/action/a.py":
            "from nightly import run\n",
        "collections/ansible_collections/kvmnetlab/lab/plugins/modules/m.py":
            "from kvmnetlab import store\n",
    })
    found = findings(tmp_path)
    assert found == [
        f"{tmp_path}/collections/ansible_collections/kvmnetlab/lab/plugins/modules/m.py:1: "
        "ansible_collections.kvmnetlab.lab.plugins.modules.m imports kvmnetlab.store, which "
        "a module run on lab hosts may not import"]
