"""Services meet only through topics: the kit never imports a service, no service another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_kit_never_imports_a_service() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "ler").rglob("*.py")
        if any(name == "services" or name.startswith("services.") for name in imports(p))
    ]
    assert offenders == []


def test_services_never_import_one_another() -> None:
    offenders = []
    for service in (ROOT / "services").iterdir():
        if not service.is_dir() or service.name.startswith("__"):
            continue
        for path in service.rglob("*.py"):
            for name in imports(path):
                parts = name.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != service.name:
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []


def test_no_package_is_named_common_utils_or_platform() -> None:
    names = {p.name for p in ROOT.glob("*/") if (p / "__init__.py").exists()}
    names |= {p.parent.name for p in (ROOT / "services").rglob("__init__.py")}
    assert not names & {"common", "utils", "platform"}
