"""Access that can be taken back: the events that replace a person's access token or an
organization's API key, as one change type every service applies to the credentials it keeps
(``ler.enrollment.v1``; see docs/security.md). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ACCESS_EVENTS = ("PersonAccessTokenReset", "OrganizationApiKeyChanged")


@dataclass(frozen=True, slots=True)
class AccessChanged:
    """The hash of the credential that now opens ``kind`` ``subject_id``; None: nothing does."""

    kind: Literal["person", "organization"]
    subject_id: str
    sha256: str | None


def access_change(event_type: str, record: Mapping[str, Any]) -> AccessChanged | None:
    """The access change one decoded ``ler.enrollment.v1`` event means, if it is one."""
    if event_type == "PersonAccessTokenReset":
        return AccessChanged("person", str(record["person_id"]), str(record["access_token_sha256"]))
    if event_type == "OrganizationApiKeyChanged":
        sha256 = record.get("api_key_sha256")
        return AccessChanged("organization", str(record["organization_id"]), sha256)
    return None
