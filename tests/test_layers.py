"""The package's layering: which layer of `lib` may import which, checked on every module's imports (those inside
functions too), and no import cycle anywhere. The table is the one in ../shared/DESIGN.md and the README."""
import ast
from pathlib import Path

import pytest

from conftest import ROOT

LIB = ROOT / "lib"
# layer -> the layers of ours it may import (besides itself, which only the cycle check constrains)
ALLOWED = {
    "core": set(),
    "nn": {"core"},
    "data": {"core"},
    "synth": {"core", "data"},
    "models": {"core", "nn"},
    "losses": {"core", "nn"},
    "metrics": {"core", "nn", "data"},
    "train": {"core", "losses", "metrics"},
    "systems": {"core", "nn", "data", "synth", "models", "losses", "metrics", "train"},
    "apps": {"core", "nn", "data", "synth", "models", "losses", "metrics", "train", "systems", "runs"},
    "runs": {"core", "nn", "data", "synth", "models", "losses", "metrics", "train", "systems", "apps"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__": parts = parts[:-1]
    return ".".join(parts)


def layer_of(module: str) -> str:
    "lib.nn.layers -> 'nn'; lib.train -> 'train'."
    return module.split(".")[1]


def imports_of(path: Path, source: str | None = None) -> list[tuple[str, int]]:
    "Every module of ours that `path` (or `source` as if it were there) imports, with the line, wherever the statement stands."
    tree, here = ast.parse(source if source is not None else path.read_text(), str(path)), module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name == "lib" or a.name.startswith("lib.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:   # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "lib" and not target.startswith("lib."): continue
            # `from lib.metrics import register_metric` imports lib.metrics; `from lib.nn import layers` the submodule
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub if (LIB.parent / (sub.replace(".", "/") + ".py")).exists() else target, node.lineno))
    return [(m, line) for m, line in found if m.count(".") >= 1 and not m.startswith("lib._")]


MODULES = sorted(p for p in LIB.rglob("*.py") if not p.name.startswith("_") or p.name == "__init__.py")
MODULES = [p for p in MODULES if module_name(p) != "lib" and not module_name(p).startswith("lib._")]


def test_every_module_has_a_known_layer():
    unknown = sorted({layer_of(module_name(p)) for p in MODULES} - set(ALLOWED))
    assert not unknown, f"modules outside the layer table: {unknown}; add their layer to ALLOWED and the README"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_follow_the_layers(path):
    here = module_name(path)
    bad = [f"{path.relative_to(ROOT)}:{line} imports {target} ({layer_of(here)} -> {layer_of(target)})"
           for target, line in imports_of(path)
           if layer_of(target) != layer_of(here) and layer_of(target) not in ALLOWED[layer_of(here)]]
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = {module_name(p): {t for t, _ in imports_of(p) if t != module_name(p)} for p in MODULES}
    # package __init__ modules (lib.metrics) are nodes too; a submodule import of a package reaches its __init__ only
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"; stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open": cycles.append(stack[stack.index(n):] + [n])
            elif n not in state: visit(n)
        stack.pop(); state[m] = "done"

    for m in sorted(graph):
        if m not in state: visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_check_sees_imports_inside_functions():
    "The checker itself: a function-level import, a relative import and a package import are all found."
    src = ("def f():\n    from lib.systems.geneva import draw_dialogues\n"
           "from ..core import make_config\nfrom ..metrics import register_metric\nimport torch\n")
    found = {m for m, _ in imports_of(LIB / "nn" / "layers.py", src)}
    assert found == {"lib.systems.geneva", "lib.core", "lib.metrics"}, found
