"""Credentials signed by our Python code verify with an independent implementation.

The verifier is Digital Bazaar's ``@digitalbazaar/vc`` with the ``eddsa-rdfc-2022`` cryptosuite
(``tests/interop/js``), fed only the contexts pinned in ``ler/credentials/contexts``. Changing one
byte of the credential subject must make it fail there too.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ler.credentials import SigningKey, add_proof, build_did_web_document
from ler.credentials.contexts import CREDENTIALS_V2, OPEN_BADGES_V3, PINNED_CONTEXTS
from ler.credentials.multikey import PublicKey

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
JS_DIR = Path(__file__).resolve().parent / "js"
CONTEXT_DIR = REPO / "ler" / "credentials" / "contexts"
DID = "did:web:registry.example.org"
NOW = "2026-03-01T12:00:00Z"


@pytest.fixture(scope="module")
def node() -> str:
    """Path to node, with ``node_modules`` installed from the lockfile (``npm ci``) if absent."""
    node_bin = shutil.which("node")
    if node_bin is None:
        pytest.fail(
            "node (v20 or later) is not on PATH; the interop test needs it to run the "
            "independent verifier in tests/interop/js"
        )
    if not (JS_DIR / "node_modules" / "@digitalbazaar" / "vc").is_dir():
        npm_bin = shutil.which("npm")
        if npm_bin is None:
            pytest.fail("npm is not on PATH; cannot install tests/interop/js dependencies")
        done = subprocess.run(
            [npm_bin, "ci", "--no-audit", "--no-fund"],
            cwd=JS_DIR,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {JS_DIR}:\n{done.stdout}\n{done.stderr}")
    return node_bin


def _keys() -> tuple[PublicKey, SigningKey]:
    old = SigningKey(id=f"{DID}#key-1", controller=DID, seed=b"\x01" * 32)
    new = SigningKey(id=f"{DID}#key-2", controller=DID, seed=b"\x02" * 32)
    return old.public_key, new


def _employment() -> dict[str, Any]:
    return {
        "@context": [
            CREDENTIALS_V2,
            {
                "ler": "urn:example:ler-vocab#",
                "EmploymentCredential": "ler:EmploymentCredential",
                "employer": "ler:employer",
                "role": "ler:role",
            },
        ],
        "id": "urn:uuid:0b7f2a5e-3c1d-4f7a-9d8e-1a2b3c4d5e6f",
        "type": ["VerifiableCredential", "EmploymentCredential"],
        "issuer": DID,
        "validFrom": "2026-01-15T00:00:00Z",
        "credentialSubject": {
            "id": "urn:uuid:7d0c8d52-5b5e-4a36-9f2b-2f0d3f6c8a11",
            "employer": "Sunny Days Child Care",
            "role": "Lead Teacher",
        },
    }


def _open_badge() -> dict[str, Any]:
    return {
        "@context": [CREDENTIALS_V2, OPEN_BADGES_V3],
        "id": "urn:uuid:5f1e4a8c-2b7d-4e61-a3c9-8d2f6b0e1c47",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "issuer": {"id": DID, "type": ["Profile"], "name": "Workforce Registry"},
        "validFrom": "2026-01-15T00:00:00Z",
        "name": "CPR and First Aid",
        "credentialSubject": {
            "id": "urn:uuid:7d0c8d52-5b5e-4a36-9f2b-2f0d3f6c8a11",
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:9a6b1c3e-4d5f-4a7b-8c9d-0e1f2a3b4c5d",
                "type": ["Achievement"],
                "name": "Pediatric CPR and First Aid",
                "criteria": {"narrative": "Pass the practical and written assessments."},
            },
        },
    }


def _run(
    node: str,
    credential: dict[str, Any],
    did_documents: list[Any],
    tmp: Path,
    status_lists: dict[str, Any] | None = None,
) -> Any:
    payload = {
        "credential": credential,
        "contexts": {url: str(CONTEXT_DIR / name) for url, name in PINNED_CONTEXTS.items()},
        "didDocuments": did_documents,
        "now": NOW,
        "statusLists": status_lists or {},
    }
    path = tmp / "input.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    done = subprocess.run(
        [node, str(JS_DIR / "verify.mjs"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode not in (0, 1):
        pytest.fail(f"verify.mjs crashed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout)
    assert (done.returncode == 0) == result["verified"]
    return result


def _one_byte_changed(credential: dict[str, Any]) -> dict[str, Any]:
    changed: dict[str, Any] = json.loads(json.dumps(credential))
    subject = changed["credentialSubject"]
    if "employer" in subject:
        subject["employer"] = subject["employer"][:-1] + "E"
    else:
        subject["achievement"]["name"] = subject["achievement"]["name"][:-1] + "D"
    return changed


@pytest.mark.parametrize("make", [_employment, _open_badge], ids=["employment", "open-badge"])
def test_did_web_credential_verifies_independently_and_fails_when_changed(
    node: str, tmp_path: Path, make: Any
) -> None:
    old_public, key = _keys()
    did_document = build_did_web_document(DID, [old_public, key])
    credential = add_proof(make(), key)

    result = _run(node, credential, [did_document], tmp_path)
    assert result["verified"], result["errors"]
    # Only pinned contexts and our DID document were asked for; nothing else exists offline.
    assert set(result["documentsRequested"]) <= set(PINNED_CONTEXTS) | {DID, f"{DID}#key-2"}

    tampered = _one_byte_changed(credential)
    result = _run(node, tampered, [did_document], tmp_path)
    assert not result["verified"]
    assert any("signature" in error.lower() for error in result["errors"]), result["errors"]


def test_did_key_credential_verifies_independently(node: str, tmp_path: Path) -> None:
    seed = b"\x07" * 32
    multibase = SigningKey(id="x#y", controller="x", seed=seed).public_key.multibase
    did = f"did:key:{multibase}"
    key = SigningKey(id=f"{did}#{multibase}", controller=did, seed=seed)
    unsigned = _employment()
    unsigned["issuer"] = did
    credential = add_proof(unsigned, key)
    assert _run(node, credential, [], tmp_path)["verified"]
    assert not _run(node, _one_byte_changed(credential), [], tmp_path)["verified"]


def test_node_version_is_supported(node: str) -> None:
    done = subprocess.run([node, "--version"], capture_output=True, text=True, check=True)
    major = int(done.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 20, f"node {done.stdout.strip()} is too old; v20 or later is needed"
