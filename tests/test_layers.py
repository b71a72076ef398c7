"""The import contract: fpgadl's subpackages depend on each other in one direction only (docs/design.md).

Every `import` in every module is read from its source (function-local imports included), so a lazy import
cannot hide a dependency that points the wrong way. Breaking a rule fails with the module and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fpgadl

PACKAGE = Path(fpgadl.__file__).parent

# layer -> the layers it may import (besides itself). Top to bottom: {cli, testing}, api, flow, {ml, hls,
# rtl, runtime}, {emulator, estimate}, core. The zoo is a leaf: only the API imports it.
ALLOWED = {
    "core": set(),
    "emulator": {"core"},
    "estimate": {"core"},
    "hls": {"core", "emulator", "estimate"},
    "ml": {"core"},
    "zoo": {"core", "ml", "hls"},
    "flow": {"core", "ml", "hls", "emulator", "estimate"},
    "rtl": {"core", "emulator", "estimate", "hls"},
    "runtime": {"core", "emulator", "hls"},
    "testing": {"core", "emulator", "estimate", "hls", "ml", "flow", "runtime", "api"},  # users' pytest plug-in: a top
    "api": {"core", "ml", "hls", "emulator", "estimate", "flow", "zoo", "rtl", "runtime"},
    "cli": {"core", "api"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fpgadl"


def fpgadl_imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported fpgadl module, line) for every import in the file, relative ones resolved."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("fpgadl")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("fpgadl"):
                names = [f"{target}.{a.name}" for a in node.names] if target in ("fpgadl",) else [target]
                found += [(n, node.lineno) for n in names]
    return found


def all_modules() -> dict[str, Path]:
    mods = {}
    for f in PACKAGE.rglob("*.py"):
        rel = f.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if "_data" in parts:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = f
    return mods


def violations(modules: dict[str, Path]) -> list[str]:
    bad = []
    for module, path in sorted(modules.items()):
        src = layer_of(module)
        for target, line in fpgadl_imports(path, module):
            dst = layer_of(target)
            if dst == src or src == "fpgadl":
                continue
            if dst not in ALLOWED.get(src, set()):
                bad.append(f"{module}:{line}: {src} imports {target} ({dst})")
    return bad


def test_every_module_belongs_to_a_known_layer():
    unknown = sorted({layer_of(m) for m in all_modules()} - set(ALLOWED) - {"fpgadl"})
    assert unknown == [], f"modules outside the layers of docs/design.md: {unknown}"


def test_dependencies_point_one_way():
    assert violations(all_modules()) == []


def test_nothing_but_the_api_imports_the_zoo():
    importers = {
        layer_of(m)
        for m, p in all_modules().items()
        for t, _ in fpgadl_imports(p, m)
        if layer_of(t) == "zoo" and layer_of(m) != "zoo"
    }
    assert importers <= {"api"}, importers


def test_the_layer_graph_has_no_cycle():
    graph = {layer: set(deps) for layer, deps in ALLOWED.items()}
    seen: dict[str, int] = {}

    def visit(n: str, stack: tuple[str, ...]) -> None:
        assert n not in stack, f"cycle: {' -> '.join((*stack, n))}"
        if seen.get(n):
            return
        for d in graph.get(n, ()):
            visit(d, (*stack, n))
        seen[n] = 1

    for layer in graph:
        visit(layer, ())


def test_the_checker_catches_a_wrong_way_import(tmp_path):
    """The contract test itself can fail: a flow module importing the zoo is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from fpgadl.zoo import build_model\n")
    found = violations({"fpgadl.flow.bad": bad})
    assert len(found) == 1 and "flow imports fpgadl.zoo" in found[0], found
