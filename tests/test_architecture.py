"""The import rule, checked on every import statement (function-level ones too).

domain and triage import nothing else of socialcare; ports add the config;
services import domain, ports, triage, config and observability, never
adapters, entry points, boto3 or Chalice; adapters never import services or
entry points. Only app.py, the entry points and the composition root
(chalicelib/bootstrap.py) see everything.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "chalicelib"
THIRD_PARTY_AWS = {"boto3", "botocore", "chalice", "aws_lambda_powertools"}

# layer -> the socialcare layers it may import
ALLOWED: Dict[str, Set[str]] = {
    "domain": {"domain"},
    "triage": {"triage"},
    "config": set(),
    "observability": {"config"},
    "ports": {"ports", "domain", "config", "triage"},
    "services": {"services", "domain", "ports", "triage", "config", "observability"},
    "adapters": {"adapters", "domain", "ports", "config", "observability"},
    "entrypoints": {"entrypoints", "services", "domain", "ports", "adapters", "config", "observability",
                    "bootstrap", "triage"},
    "bootstrap": {"adapters", "ports", "config", "domain"},
    "cost": {"cost", "entrypoints", "services", "domain", "ports", "adapters", "config", "observability",
             "bootstrap", "triage"},
}
# Third-party packages a layer may not touch: the domain and services stay plain Python.
FORBIDDEN_THIRD_PARTY: Dict[str, Set[str]] = {
    "domain": THIRD_PARTY_AWS,
    "triage": THIRD_PARTY_AWS,
    "ports": THIRD_PARTY_AWS,
    "services": THIRD_PARTY_AWS,
    "adapters": {"chalice"},
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "chalicelib" or len(parts) == 1:
        raise ValueError(module)
    return parts[1]


def module_name(path: Path, root: Path = ROOT) -> str:
    relative = path.relative_to(root).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path = ROOT) -> Iterator[Tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "chalicelib":  # "from chalicelib import x": the layer is the name imported
                for alias in node.names:
                    yield node.lineno, f"chalicelib.{alias.name}"
            else:
                yield node.lineno, target


def violations(root: Path = ROOT) -> List[str]:
    found = []
    for path in sorted((root / "chalicelib").rglob("*.py")):
        module = module_name(path, root)
        if module == "chalicelib":
            continue
        layer = layer_of(module)
        for line, target in imports(path, root):
            where = f"{path.relative_to(root)}:{line} imports {target}"
            top = target.split(".")[0]
            if top == "chalicelib":
                if layer_of(target) not in ALLOWED[layer]:
                    found.append(f"{where}: {layer} may only import {sorted(ALLOWED[layer])}")
            elif top in FORBIDDEN_THIRD_PARTY.get(layer, set()):
                found.append(f"{where}: {layer} must not import {top}")
    return found


def test_every_module_belongs_to_a_known_layer():
    layers = {layer_of(module_name(p)) for p in PACKAGE.rglob("*.py") if module_name(p) != "chalicelib"}
    assert layers <= set(ALLOWED), f"new top-level module(s) {layers - set(ALLOWED)}: put them in a layer"


def test_imports_point_one_way():
    assert violations() == []


@pytest.mark.parametrize("source, expected", [
    ("chalicelib/services/sample.py", "from chalicelib.adapters.stores import DynamoCaseStore\n"),
    ("chalicelib/domain/sample.py", "import boto3\n"),
    ("chalicelib/adapters/sample.py", "from chalicelib.services import inbox\n"),
    ("chalicelib/domain/sample.py", "from chalicelib import config\n"),
])
def test_the_checker_catches_a_crossed_line(tmp_path, source, expected):
    """The rule bites: a module crossing a line is reported (checked on a scratch copy of the tree)."""
    import shutil

    scratch = tmp_path / "root"
    shutil.copytree(PACKAGE, scratch / "chalicelib")
    (scratch / source).write_text(expected)
    assert [v for v in violations(scratch) if "sample.py" in v]


def test_no_storage_keys_or_index_names_outside_adapters():
    """Stores own their keys: nothing else names pk, sk or an index."""
    words = ("\"pk\"", "'pk'", "\"sk\"", "'sk'", "IndexName", "inbox-by-", "by-customer", "ExclusiveStartKey")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if module_name(path) == "chalicelib" or layer_of(module_name(path)) == "adapters":
            continue
        text = path.read_text()
        offenders += [f"{path.relative_to(ROOT)}: {w}" for w in words if w in text]
    assert offenders == []


def test_errors_are_caught_by_type_not_by_class_name():
    offenders = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if "__name__ in" in p.read_text()
                 or "type(err).__name__ ==" in p.read_text()]
    assert offenders == []
