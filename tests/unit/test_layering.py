"""The layering rule, enforced: a module imports only modules of its own layer or below.

thin FUSE adapter -> fs -> cache / writeback / reader -> store interface -> API clients ->
transport and auth. The table below gives each module its layer; a module missing from it
fails the test, so a new module has to be placed deliberately. The emulator may use the
signing code and the wire codecs, and nothing of the filesystem.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "cosfs"

#: Module-name prefix -> layer. The longest matching prefix wins.
LAYERS = {
    "cosfs": 0,
    "cosfs.errors": 0,
    "cosfs.model": 0,
    "cosfs.options": 0,
    "cosfs.retry": 0,
    "cosfs.signing": 0,
    "cosfs.credentials": 0,
    "cosfs.store.endpoints": 0,
    "cosfs.paths": 0,
    "cosfs.log": 0,
    "cosfs.transport": 1,
    "cosfs.store.xml_codec": 2,
    "cosfs.store.json_codec": 2,
    "cosfs.store.xml_store": 2,
    "cosfs.store.json_store": 2,
    "cosfs.store": 3,
    "cosfs.diagnose": 3,
    "cosfs.attrs": 4,
    "cosfs.cache": 4,
    "cosfs.staging": 4,
    "cosfs.writeback": 4,
    "cosfs.reader": 4,
    "cosfs.lookup": 5,
    "cosfs.handles": 5,
    "cosfs.tree": 5,
    "cosfs.fs": 5,
    "cosfs.ops": 6,
    "cosfs._fuse": 6,
    "cosfs.mount": 7,
    "cosfs.cli": 7,
    "cosfs.daemon": 7,
    "cosfs.doctor": 7,
    "cosfs.__main__": 8,
}

#: The emulator is a separate program: it may import these parts of cosfs and nothing else.
EMULATOR_ALLOWED = ("cosfs.signing", "cosfs.store.xml_codec", "cosfs.store.json_codec", "cosfs.errors", "cosfs.emulator", "cosfs")

#: Modules of the filesystem side that must never import the emulator or each other's tops.
FUSE_BINDINGS = ("fuse", "mfusepy")


def module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(name: str) -> int:
    matches = [prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")]
    assert matches, f"{name} has no layer in tests/unit/test_layering.py"
    return LAYERS[max(matches, key=len)]


def imports_of(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                yield submodule if _is_module(submodule) else node.module


def package_modules():
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_imports_only_its_layer_or_below():
    violations = []
    for path in package_modules():
        name = module_name(path)
        if name.startswith("cosfs.emulator"):
            continue
        own = layer_of(name)
        for imported in imports_of(path):
            if imported.startswith("cosfs.emulator"):
                violations.append(f"{name} imports the emulator ({imported})")
            elif imported.split(".")[0] in FUSE_BINDINGS and name != "cosfs._fuse":
                violations.append(f"{name} imports the FUSE binding {imported}; only cosfs._fuse may")
            elif imported.startswith("cosfs.") and _is_module(imported) and layer_of(imported) > own:
                violations.append(f"{name} (layer {own}) imports {imported} (layer {layer_of(imported)})")
    assert violations == []


def test_emulator_imports_nothing_of_the_filesystem():
    violations = []
    for path in package_modules():
        name = module_name(path)
        if not name.startswith("cosfs.emulator"):
            continue
        for imported in imports_of(path):
            if imported.startswith("cosfs.") and _is_module(imported) and not imported.startswith(EMULATOR_ALLOWED[:-1]):
                violations.append(f"{name} imports {imported}")
    assert violations == []


def _is_module(name: str) -> bool:
    """Whether ``name`` is a cosfs module or package (not a name imported from one)."""
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()
