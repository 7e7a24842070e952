"""Imports only go down: the graph of synth's modules importing each other, built from the source
with `ast` (imports inside functions count too), has no cycle."""

import ast
import os

import pytest

from conftest import ROOT

PACKAGE = "synth"


def module_files(root: str = ROOT) -> dict[str, str]:
    """{dotted module name: file} of every .py file of the package (generated *_pb2.py left out:
    protoc writes them and they import only protobuf)."""
    out = {}
    base = os.path.join(root, PACKAGE)
    for folder, _, files in os.walk(base):
        for name in files:
            if not name.endswith(".py") or name.endswith("_pb2.py"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), root)[:-3].split(os.sep)
            if rel[-1] == "__init__":
                rel = rel[:-1]
            out[".".join(rel)] = os.path.join(folder, name)
    return out


def imported_modules(path: str, module: str, known: set[str]) -> set[str]:
    """The package modules that `path` (module `module`) imports anywhere in its body: `import a.b`,
    `from a import b` (b a module, or a name of package a), `from a.b import c` and relative imports."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    is_package = os.path.basename(path) == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parts = module.split(".") if is_package else module.split(".")[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import synth.x.y` of a name: the nearest module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(root: str = ROOT) -> dict[str, set[str]]:
    files = module_files(root)
    return {m: imported_modules(p, m, set(files)) for m, p in files.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), sorted: the modules
    that import each other, directly or through others."""
    index, low, stack, on_stack, comps = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return comps


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle through each circle, so that a failure shows an import to cut."""
    return [_cycle_through(graph, comp) for comp in circles(graph)]


def _cycle_through(graph, comp: list[str]) -> list[str]:
    """A shortest cycle from the first module of a strongly connected component back to itself."""
    start, members = comp[0], set(comp)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & members):
            if w == start:
                return paths[v] + [start]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return comp  # unreachable for a strongly connected component


def test_synth_has_no_import_cycle():
    graph = import_graph()
    assert len(graph) > 40 and "synth.cli.make_tfrecords" in graph  # the walk found the package
    found = circles(graph)
    assert not found, "import circles (imports inside functions count): " + "; ".join(
        f"{', '.join(comp)} (e.g. {' -> '.join(_cycle_through(graph, comp))})" for comp in found)


def _write(root, files: dict[str, str]):
    for rel, text in files.items():
        path = os.path.join(root, PACKAGE, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path):
    _write(str(tmp_path), {
        "__init__.py": "",
        "a.py": "from synth import b\n",
        "b.py": "def f():\n    from synth.c import g\n    return g\n",
        "c.py": "import synth.a\ndef g():\n    pass\n",
        "d.py": "from synth.a import x\n",  # imports into the cycle, not part of it
        "sub/__init__.py": "",
        "sub/e.py": "from .. import d\nfrom . import f\n",
        "sub/f.py": "def h():\n    from synth.sub import e\n",
    })
    graph = import_graph(str(tmp_path))
    assert graph["synth.b"] == {"synth.c"} and graph["synth.d"] == {"synth.a"}
    assert graph["synth.sub.e"] == {"synth.d", "synth.sub.f"}
    assert find_cycles(graph) == [["synth.a", "synth.b", "synth.c", "synth.a"],
                                  ["synth.sub.e", "synth.sub.f", "synth.sub.e"]]


@pytest.mark.parametrize("text", ["import synth.b.x\n", "from synth.b import name\n"])
def test_a_name_imported_from_a_module_is_an_edge_to_that_module(tmp_path, text):
    _write(str(tmp_path), {"__init__.py": "", "a.py": text, "b.py": "name = 1\n"})
    assert import_graph(str(tmp_path))["synth.a"] == {"synth.b"}


# The realism stages are pure functions over arrays and records: each imports only the shared
# helpers below it (errors, boxes, measure, geometry, colourway, its own sub-module), never the sampling layer
# (settings, logo_bank, scene) nor anything above it.
STAGES = ("synth.surface", "synth.placement", "synth.colourway", "synth.curvature", "synth.geometry",
          "synth.photometric", "synth.camera", "synth.blending", "synth.occlusion", "synth.cutout", "synth.framing",
          "synth.gate", "synth.structure", "synth.context", "synth.context_draw")
STAGE_MAY_IMPORT = {"synth.errors", "synth.boxes", "synth.measure", "synth.geometry", "synth.surface",
                    "synth.surface_plane", "synth.cutout", "synth.colourway", "synth.context", "synth.structure",
                    "synth.pixels"}


def test_the_realism_stages_import_only_shared_helpers():
    graph = import_graph()
    for stage in STAGES:
        assert stage in graph, stage
        assert graph[stage] <= STAGE_MAY_IMPORT, f"{stage} imports {sorted(graph[stage] - STAGE_MAY_IMPORT)}"
    # the sampling layer is where the stages meet
    assert "synth.curvature" in graph["synth.scene"] and "synth.curvature" in graph["synth.settings"]
