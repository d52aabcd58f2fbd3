"""The architecture floor: data flows one way, io -> preprocess/store -> models/metric -> catalog
-> plots/evaluation -> cli, and no module imports a module on a higher floor (lazy imports
included). ``evaluation`` compares outputs with a mock's truth: it reads catalogues and models
like ``plots`` does, and only the CLI (the demo) and the benchmarks use it.

The modules at the package's root (errors, spectra, atomic, runtime, ...) are the ground floor
that every layer may use. The package's ``__init__`` is its facade: ``specsift.read`` re-exports
the io reader, so it alone may import upwards.
"""

from __future__ import annotations

import ast
from pathlib import Path

import specsift

PACKAGE = Path(specsift.__file__).parent
FLOORS = {"io": 1, "preprocess": 2, "store": 2, "models": 3, "metric": 3, "catalog": 4,
          "plots": 5, "evaluation": 5, "cli": 6}
FACADE = "specsift"


def _module_name(path: Path, root: Path) -> str:
    parts = ("specsift", *path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.get(parts[1], 0) if len(parts) > 1 else 0


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, at any depth of the file."""
    module = _module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module
            if node.module:
                found.append((node.lineno, module))
            else:  # ``from . import x``: each name may be a module of its own
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _violations(root: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root)
        if module == FACADE:
            continue
        for line, target in _imports(path, root):
            if target.split(".")[0] == "specsift" and _floor(target) > _floor(module):
                out.append(f"{path.relative_to(root.parent)}:{line}: {module} (floor "
                           f"{_floor(module)}) imports {target} (floor {_floor(target)})")
    return out


def test_every_subpackage_has_a_floor():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages - {"data"} <= set(FLOORS), "place the new package on a floor"


def test_no_module_imports_a_higher_floor():
    assert _violations() == []


def test_the_check_sees_relative_lazy_and_absolute_imports(tmp_path):
    fake = tmp_path / "specsift"
    (fake / "io").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "io" / "__init__.py").write_text("from ..cli import main\n")
    (fake / "io" / "reader.py").write_text(
        "def f():\n    from ..catalog.writer import x\n    import specsift.plots.gallery\n"
        "    from . import fitsutil\n    from .. import errors\n")
    found = _violations(fake)
    assert [v.split(" imports ")[1].split()[0] for v in found] == [
        "specsift.cli", "specsift.catalog.writer", "specsift.plots.gallery"], found
