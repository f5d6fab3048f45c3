"""Who issued a credential, and whether the verifier trusts them.

A valid signature proves only that the holder of some key signed the content: anyone can make a
``did:key`` and sign a credential that calls its issuer "LER Workforce Registry". So a verdict
states authenticity (proof, status, validity: ``verified``) and, apart from it, the issuer: its
id, whether it is on the verifier's trust list, the name the trust list gives it, and the name
the credential claims for it. An issuer that is not on the list is a warning, worded for someone
who is not an expert; a credential that claims the name of a trusted issuer it was not signed by
is a stronger one.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ler.credentials.verify import Problem, Verdict

__all__ = ["IssuerTrust", "TrustList", "TrustedIssuer", "assess_issuer", "with_issuer_trust"]

_LER = "urn:ler:problem:"
UNKNOWN_ISSUER = f"{_LER}unknown-issuer"
IMPERSONATION = f"{_LER}issuer-impersonation"


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """One entry of a trust list: an issuer's DID and the name to show for it."""

    id: str
    name: str


def _folded(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).casefold()
    return "".join(c for c in text if c.isalnum())


class TrustList:
    """The issuers a verifier trusts, by DID (exact match; DIDs are case-sensitive)."""

    def __init__(self, issuers: Iterable[TrustedIssuer]) -> None:
        self._by_id = {issuer.id: issuer for issuer in issuers}
        self._names = {_folded(issuer.name): issuer for issuer in self._by_id.values()}

    @property
    def issuers(self) -> tuple[TrustedIssuer, ...]:
        return tuple(self._by_id.values())

    def get(self, issuer_id: str | None) -> TrustedIssuer | None:
        return self._by_id.get(issuer_id) if issuer_id else None

    def named_like(self, name: str | None) -> TrustedIssuer | None:
        """The trusted issuer whose name this is (ignoring case, accents, spaces, punctuation)."""
        return self._names.get(_folded(name)) if name else None


@dataclass(frozen=True, slots=True)
class IssuerTrust:
    """The ``issuer`` entry of a verdict."""

    id: str | None
    trusted: bool
    name: str | None
    claimed_name: str | None
    detail: str
    warning: Problem | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trusted": self.trusted,
            "name": self.name,
            "claimed_name": self.claimed_name,
            "detail": self.detail,
        }


def _claimed_name(issuer: Any) -> str | None:
    if not isinstance(issuer, Mapping):
        return None
    name = issuer.get("name")
    if isinstance(name, str):
        return name[:200]
    if isinstance(name, Mapping) and isinstance(name.get("@value"), str):
        return str(name["@value"])[:200]
    return None


def assess_issuer(credential: Any, trust: TrustList) -> IssuerTrust:
    """Who issued ``credential`` and whether ``trust`` holds them (never raises)."""
    issuer = credential.get("issuer") if isinstance(credential, Mapping) else None
    issuer_id = issuer if isinstance(issuer, str) else None
    if isinstance(issuer, Mapping) and isinstance(issuer.get("id"), str):
        issuer_id = str(issuer["id"])
    claimed = _claimed_name(issuer)
    known = trust.get(issuer_id)
    if known is not None:
        return IssuerTrust(
            issuer_id,
            True,
            known.name,
            claimed,
            f"Issued by {known.name} ({issuer_id}), an issuer this registry trusts.",
        )
    if issuer_id is None:
        detail = "The credential does not say who issued it, so nobody vouches for it."
        return IssuerTrust(
            None, False, None, claimed, detail, Problem(UNKNOWN_ISSUER, "Issuer unknown", detail)
        )
    lookalike = trust.named_like(claimed)
    if lookalike is not None:
        detail = (
            f"The credential calls its issuer {claimed!r}, but it was issued by {issuer_id}, "
            f"which is not {lookalike.name} ({lookalike.id}). Do not rely on it: anyone can "
            "make a key and sign a credential with any name."
        )
        return IssuerTrust(
            issuer_id,
            False,
            None,
            claimed,
            detail,
            Problem(IMPERSONATION, "Issuer pretends to be someone else", detail),
        )
    named = f" (it calls itself {claimed!r}; nobody has confirmed that name)" if claimed else ""
    detail = (
        f"The credential was issued by {issuer_id}{named}, which is not on this registry's list "
        "of trusted issuers. A valid signature shows only that the content was not changed since "
        "this issuer signed it, not who the issuer really is."
    )
    return IssuerTrust(
        issuer_id,
        False,
        None,
        claimed,
        detail,
        Problem(UNKNOWN_ISSUER, "Issuer not known to this registry", detail),
    )


def with_issuer_trust(
    verdict: Verdict, credential: Any, trust: TrustList, nested: Sequence[Any] = ()
) -> Verdict:
    """``verdict`` with its ``issuer`` entry (a credential's) and warnings, and the same for
    each credential of a presentation (``nested``: its credentials, in the verdict's order)."""
    if verdict.kind == "presentation":
        inner = tuple(
            with_issuer_trust(v, c, trust)
            for v, c in zip(verdict.credentials, nested, strict=False)
        )
        return dataclasses.replace(verdict, credentials=inner + verdict.credentials[len(inner) :])
    assessed = assess_issuer(credential, trust)
    warnings = (assessed.warning,) if assessed.warning is not None else ()
    return dataclasses.replace(verdict, issuer=assessed, warnings=warnings)
