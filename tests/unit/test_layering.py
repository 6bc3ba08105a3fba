"""The layering rule, enforced: each layer imports only what the table below allows it.

The layers are the subpackages of ``cosfs`` (``docs/ARCHITECTURE.md`` has the same table):

    command -> fuse_adapter -> filesystem -> metadata, data -> store -> wire

A module may import its own layer, and from the layers below only the modules listed for
it. Above the store, that is ``cosfs.store.interface`` and never a concrete API client;
above the wire, ``cosfs.wire.errors``. Only the command layer (the composition root) sees
everything. cosfs-emulator is a separate program: it may use the signing code and the
neutral table of documented COS facts, and nothing of the client.

Imports are read from the source (absolute and relative, at any depth in the file), and
checked once more at run time: importing a module in a fresh interpreter must not load a
module it is not allowed to import, however indirectly.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "cosfs"

#: Everything of the client below the command layer.
_ALL_BELOW_COMMAND = ("cosfs.fuse_adapter", "cosfs.filesystem", "cosfs.metadata", "cosfs.data", "cosfs.store", "cosfs.wire")
_FS_VIEW_OF_LOWER = ("cosfs.store.interface", "cosfs.wire.errors", "cosfs.wire.facts")

#: Layer (a package, or one module of one) -> what it may import besides itself and ``cosfs``
#: (the package root holds only the version). The longest matching layer name wins.
ALLOWED = {
    "cosfs.__main__": ("cosfs.command",),
    "cosfs.command": _ALL_BELOW_COMMAND,
    "cosfs.fuse_adapter": ("cosfs.filesystem", "cosfs.metadata") + _FS_VIEW_OF_LOWER,
    "cosfs.filesystem": ("cosfs.metadata", "cosfs.data") + _FS_VIEW_OF_LOWER,
    "cosfs.metadata": _FS_VIEW_OF_LOWER,
    "cosfs.data": _FS_VIEW_OF_LOWER,
    "cosfs.store.interface": ("cosfs.wire.errors", "cosfs.wire.credentials", "cosfs.wire.facts"),
    "cosfs.store": ("cosfs.wire",),
    "cosfs.wire.request_stats": ("cosfs.wire.errors",),  # the transport's observer; it never sends
    "cosfs.wire": (),
    "cosfs.emulator": ("cosfs.wire.signing", "cosfs.wire.facts"),
}

#: Only the binding shim may load a FUSE binding.
FUSE_BINDINGS = ("fuse", "mfusepy")
BINDING_SHIM = "cosfs.fuse_adapter.binding"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> List[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def layer_of(name: str) -> str:
    matches = [layer for layer in ALLOWED if name == layer or name.startswith(layer + ".")]
    assert matches, f"{name} belongs to no layer of tests/unit/test_layering.py: place it deliberately"
    return max(matches, key=len)


def _is_module(name: str) -> bool:
    """Whether ``name`` is a cosfs module or package (not a name imported from one)."""
    relative = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / relative).with_suffix(".py").is_file() or (root / relative / "__init__.py").is_file()


def _absolute(module: str, node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` names, resolving ``from . import x`` forms."""
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    for _ in range(node.level - 1):
        base.pop()
    return ".".join(base + ([module] if module else []))


def imports_of(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, wherever in the file (functions included)."""
    importer = module_name(path)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node.module or "", node, importer, path.name == "__init__.py")
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                yield submodule if _is_module(submodule) else module


def allowed(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported``."""
    if imported == "cosfs" or not imported.startswith("cosfs."):
        return True
    own = layer_of(importer)
    if imported == own or imported.startswith(own + ".") or own.startswith(imported + "."):
        return True
    return any(imported == target or imported.startswith(target + ".") or target.startswith(imported + ".")
               for target in ALLOWED[own])


def violations_in(sources: List[Tuple[str, List[str]]]) -> List[str]:
    found = []
    for name, imported_modules in sources:
        for imported in imported_modules:
            if imported.split(".")[0] in FUSE_BINDINGS and name != BINDING_SHIM:
                found.append(f"{name} imports the FUSE binding {imported}; only {BINDING_SHIM} may")
            elif not allowed(name, imported):
                found.append(f"{name} (layer {layer_of(name)}) may not import {imported}")
    return found


def test_every_module_imports_only_what_its_layer_allows():
    sources = [(module_name(path), list(imports_of(path))) for path in package_modules()]
    assert violations_in(sources) == []


def test_the_rule_catches_a_relative_import_of_a_higher_layer():
    """``from ..filesystem import posix`` inside the data layer is seen and refused."""
    node = ast.parse("from ..filesystem import posix").body[0]
    assert _absolute("filesystem", node, "cosfs.data.uploader", False) == "cosfs.filesystem"
    assert violations_in([("cosfs.data.uploader", ["cosfs.filesystem.posix"])])


def test_the_rule_catches_a_concrete_client_above_the_store():
    assert violations_in([("cosfs.filesystem.posix", ["cosfs.store.xml_store"])])
    assert violations_in([("cosfs.fuse_adapter.operations", ["cosfs.wire.transport"])])
    assert not violations_in([("cosfs.filesystem.posix", ["cosfs.store.interface"])])
    assert not violations_in([("cosfs.command.store_factory", ["cosfs.store.xml_store"])])


def test_package_files_import_nothing():
    """Loading ``cosfs.store.interface`` runs ``cosfs/store/__init__.py``: it must not pull in
    the clients (it once held the store factory, and every import of the package ran it)."""
    importing = [str(path.relative_to(REPOSITORY)) for path in PACKAGE.rglob("__init__.py")
                 if [m for m in imports_of(path) if m != "__future__"]]
    assert importing == []


def test_every_layer_named_in_the_table_exists():
    missing = [layer for layer in ALLOWED if not _is_module(layer)]
    assert missing == []


def test_architecture_doc_names_every_module_and_only_modules_that_exist():
    """``docs/ARCHITECTURE.md``'s layer table and ``ls -R cosfs`` tell the same story."""
    doc = (REPOSITORY / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    table = [line for line in doc.splitlines() if line.startswith("| `cosfs/")]
    assert table, "docs/ARCHITECTURE.md has no layer table"
    documented = set()
    for row in table:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        package = cells[0].strip("`").rstrip("/")
        for module in cells[1].replace("`", "").split(","):
            module = module.strip()
            if module:
                documented.add(f"{package}/{module}")
    actual = set()
    for path in package_modules():
        relative = path.relative_to(REPOSITORY)
        if path.name in ("__init__.py", "__main__.py") or relative.parts[1] == "emulator":
            continue
        actual.add(str(relative.with_suffix("")))
    actual |= {str(p.relative_to(REPOSITORY)) for p in PACKAGE.glob("*/*/") if (p / "__init__.py").is_file()
               and p.parent.name != "emulator"}
    actual = {a for a in actual if not any(a.startswith(pkg + "/") and pkg in actual for pkg in actual if pkg != a)}
    assert sorted(documented - actual) == [], "documented but missing"
    assert sorted(actual - documented) == [], "present but not documented"


# --- what a module loads at run time, indirectly included -----------------------------------

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith('cosfs') or m.split('.')[0] in ('requests', 'urllib3', 'mfusepy', 'fuse'))))
"""


def loaded_by(module: str) -> List[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, module], capture_output=True, text=True,
                            cwd=REPOSITORY, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_emulator_server_loads_no_client_module():
    loaded = loaded_by("cosfs.emulator.server")
    assert [m for m in loaded if m.startswith("cosfs.store")] == []
    assert [m for m in loaded if not allowed("cosfs.emulator.server", m) and m.startswith("cosfs.")] == []
    assert "requests" not in loaded


#: Bottom to top; a module never loads one of a later (higher) layer.
ORDER = ("cosfs.wire", "cosfs.store", "cosfs.data", "cosfs.metadata", "cosfs.filesystem", "cosfs.fuse_adapter",
         "cosfs.command")
#: What talks to COS: above the store, nothing of it may be loaded, however indirectly.
CLIENT_SIDE = ("cosfs.store.xml_store", "cosfs.store.json_store", "cosfs.store.xml_codec", "cosfs.store.json_codec",
               "cosfs.store.endpoints", "cosfs.wire.transport", "cosfs.wire.http", "cosfs.wire.signing", "requests",
               "urllib3")


def _rank(module: str) -> int:
    return max(i for i, layer in enumerate(ORDER) if module == layer or module.startswith(layer + ".") or i == 0)


@pytest.mark.parametrize("module", ["cosfs.fuse_adapter.operations", "cosfs.filesystem.posix", "cosfs.data.uploader",
                                    "cosfs.data.staging", "cosfs.data.upload_tracker", "cosfs.metadata.cache",
                                    "cosfs.store.interface"])
def test_a_layer_loads_no_client_and_nothing_above_it(module):
    """No import chain reaches past the table: the filesystem never loads an API client or HTTP."""
    loaded = loaded_by(module)
    assert [m for m in loaded if m.startswith(CLIENT_SIDE)] == []
    assert [m for m in loaded if m.startswith("cosfs.") and _rank(m) > _rank(module)] == []


def test_the_status_client_loads_nothing_of_the_mount():
    """``cosfs status`` only talks to a socket: no FUSE binding, no filesystem, no HTTP client,
    so it starts fast and works whatever state the mount it asks about is in."""
    loaded = loaded_by("cosfs.command.status")
    assert sorted(loaded) == ["cosfs", "cosfs.command", "cosfs.command.snapshot", "cosfs.command.status",
                              "cosfs.command.status_socket"]
