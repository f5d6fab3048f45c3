"""Create the next signing key of a key ring: ``python -m ler.credentials.keygen``.

Example: ``python -m ler.credentials.keygen --did did:web:registry.example.org --dir var/keys``
writes ``var/keys/key-<n>.json`` (mode 0600) with the next free ``<n>``. With ``--retire-old``
the secrets of the older keys are removed from their files; their public halves stay in the ring,
so the DID document keeps listing them and credentials they signed stay verifiable.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ler.credentials.multikey import KeyFileError, generate_key_file, load_key_file

__all__ = ["main", "next_key_id", "retire_secret"]

_KEY_FILE = re.compile(r"^key-(\d+)\.json$")


def next_key_id(directory: Path, did: str) -> tuple[str, Path]:
    """The id and file path of the next key (``<did>#key-<n+1>``) in ``directory``."""
    numbers = [
        int(m.group(1)) for p in directory.glob("key-*.json") if (m := _KEY_FILE.match(p.name))
    ]
    n = max(numbers, default=0) + 1
    return f"{did}#key-{n}", directory / f"key-{n}.json"


def retire_secret(path: Path) -> bool:
    """Remove ``secretKeyMultibase`` from a key file; True when the file changed."""
    load_key_file(path)  # refuse to rewrite a file that is not a valid key
    data = json.loads(path.read_text(encoding="utf-8"))
    if "secretKeyMultibase" not in data:
        return False
    del data["secretKeyMultibase"]
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints the new key's id and public key (never the secret)."""
    parser = argparse.ArgumentParser(prog="python -m ler.credentials.keygen", description=__doc__)
    parser.add_argument("--did", required=True, help="controller DID, e.g. did:web:example.org")
    parser.add_argument("--dir", required=True, type=Path, help="key ring directory")
    parser.add_argument("--retire-old", action="store_true", help="drop older keys' secrets")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    directory.mkdir(parents=True, exist_ok=True)
    old_files = sorted(directory.glob("key-*.json"))
    key_id, path = next_key_id(directory, args.did)
    try:
        key = generate_key_file(path, key_id, controller=args.did)
        if args.retire_old:
            for old in old_files:
                retire_secret(old)
    except (KeyFileError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {"id": key.id, "publicKeyMultibase": key.public_key.multibase, "file": str(path)}
        )
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
