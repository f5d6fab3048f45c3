"""Renders the kustomize overlays once per session with the real kustomize built into kubectl."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
Manifest = dict[str, Any]


def _kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        reason = "kubectl (with its built-in kustomize) is not installed: apt-get install kubectl"
        # CI must not pass by skipping the manifest checks.
        if os.environ.get("CI") or os.environ.get("LER_REQUIRE_KUBECTL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def render(path: Path) -> list[Manifest]:
    """The documents `kubectl apply -k path` would send, in order."""
    out = subprocess.run(
        [_kubectl(), "kustomize", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="session")
def rendered() -> Callable[[str], list[Manifest]]:
    """rendered("dev") / rendered("prod") / rendered("base"), each rendered once."""
    cache: dict[str, list[Manifest]] = {}

    def get(name: str) -> list[Manifest]:
        if name not in cache:
            cache[name] = render(K8S / "base" if name == "base" else K8S / "overlays" / name)
        return cache[name]

    return get
