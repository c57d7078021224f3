"""The layering of docs/architecture.md: each folder imports only the folders below it
(rtl/ nothing of ours; sim/ and boards/ only rtl/; lockstep/ sim/, boards/ and rtl/)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = {"rtl", "sim", "boards", "lockstep"}
ALLOWED = {"rtl": set(), "sim": {"rtl"}, "boards": {"rtl"},
           "lockstep": {"sim", "boards", "rtl"}}


def imported_packages(path):
    """Our top-level packages that ``path`` imports (absolute imports; relative ones stay in
    their own package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_folder_imports_only_the_layers_below_it(package):
    wrong = {str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[package]
                                                 - {package})
             for path in sorted((ROOT / package).rglob("*.py"))}
    assert {path: names for path, names in wrong.items() if names} == {}


def test_the_check_sees_an_upward_import(tmp_path):
    upward = tmp_path / "bench.py"
    upward.write_text("import numpy\nfrom lockstep.hostlink import LinkError\nfrom . import x\n")
    assert imported_packages(upward) == {"lockstep"}
