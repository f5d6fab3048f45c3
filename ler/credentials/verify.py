"""Verify credentials and presentations from any issuer: a verdict made of named checks.

Every failed check carries a problem-details entry (``type``, ``title``, ``detail``) written for a
person who is not an expert. Check names are a stable contract: ``structure``, ``issuer_key``,
``proof``, ``validity_period``, ``status`` for a credential; ``structure``, ``holder_key``,
``proof``, ``challenge``, ``domain``, ``expiry``, ``credentials`` for a presentation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
import weakref
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson

from ler.credentials.contexts import CREDENTIALS_V1, CREDENTIALS_V2
from ler.credentials.dataintegrity import CRYPTOSUITE, PROOF_TYPE, ProofError, verify_proof
from ler.credentials.did import DidResolver, KeyResolutionError, resolve_verification_method
from ler.credentials.jsonld import (
    CanonicalizationError,
    ContextNotPinnedError,
    OfflineDocumentLoader,
    TooComplexError,
)
from ler.credentials.multikey import PublicKey
from ler.credentials.statuslist import StatusList, StatusListError

if TYPE_CHECKING:
    from ler.credentials.trust import IssuerTrust

__all__ = [
    "Check",
    "Outcome",
    "Problem",
    "StaticStatusListFetcher",
    "StatusListFetcher",
    "Verdict",
    "verify_credential",
    "verify_presentation",
]

_SECURITY = "https://w3id.org/security#"
_VCDM = "https://www.w3.org/TR/vc-data-model#"
_STATUS = "https://www.w3.org/ns/credentials/status-list#"
_LER = "urn:ler:problem:"


class Outcome(StrEnum):
    """How one check ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457-style problem: ``type`` URI, short ``title``, plain-language ``detail``."""

    type: str
    title: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"type": self.type, "title": self.title, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Check:
    """One named check; ``problem`` is set exactly when it failed."""

    name: str
    outcome: Outcome
    detail: str
    problem: Problem | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        data: dict[str, Any] = {"name": self.name, "outcome": str(self.outcome)}
        data["detail"] = self.detail
        if self.problem is not None:
            data["problem"] = self.problem.to_dict()
        return data


def _passed(name: str, detail: str) -> Check:
    return Check(name, Outcome.PASSED, detail)


def _skipped(name: str, detail: str) -> Check:
    return Check(name, Outcome.SKIPPED, detail)


def _failed(name: str, problem_type: str, title: str, detail: str) -> Check:
    return Check(name, Outcome.FAILED, detail, Problem(problem_type, title, detail))


@dataclass(frozen=True)
class Verdict:
    """The result: ``verified`` is True when no check failed (skipped checks do not fail it).

    ``verified`` is about authenticity only; ``issuer`` (set by ``ler.credentials.trust``) says
    who issued a credential and whether the verifier trusts them, and ``warnings`` holds what a
    reader should know although no check failed (an issuer nobody vouches for).
    """

    kind: str
    id: str | None
    checks: tuple[Check, ...]
    credentials: tuple[Verdict, ...] = field(default=())
    issuer: IssuerTrust | None = None
    warnings: tuple[Problem, ...] = field(default=())

    @property
    def trusted(self) -> bool:
        """Verified, and every credential's issuer is trusted (False while trust is unknown)."""
        if not self.verified:
            return False
        if self.kind == "presentation":
            return all(nested.trusted for nested in self.credentials)
        return self.issuer is not None and self.issuer.trusted

    @property
    def verified(self) -> bool:
        """True when no check failed."""
        return all(check.outcome is not Outcome.FAILED for check in self.checks)

    def check(self, name: str) -> Check:
        """The check called ``name`` (KeyError when absent)."""
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    @property
    def problems(self) -> list[Problem]:
        """Problems of the failed checks, nested credentials' included."""
        found = [c.problem for c in self.checks if c.problem is not None]
        for nested in self.credentials:
            found.extend(nested.problems)
        return found

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``POST /v1/verify`` can return)."""
        data: dict[str, Any] = {
            "verified": self.verified,
            "kind": self.kind,
            "id": self.id,
            "checks": [check.to_dict() for check in self.checks],
        }
        if self.issuer is not None:
            data["issuer"] = self.issuer.to_dict()
        if self.issuer is not None or any(n.issuer is not None for n in self.credentials):
            data["trusted"] = self.trusted
            data["warnings"] = [warning.to_dict() for warning in self.warnings]
        if self.kind == "presentation":
            data["credentials"] = [nested.to_dict() for nested in self.credentials]
        return data


class StatusListFetcher(ABC):
    """Port: returns the status list credential published at ``url``, or None when unknown."""

    @abstractmethod
    def fetch(self, url: str) -> Mapping[str, Any] | None:
        """The (signed) ``BitstringStatusListCredential`` whose id is ``url``, or None."""


class StaticStatusListFetcher(StatusListFetcher):
    """Fetcher over status list credentials held in memory (keyed by their ``id``)."""

    def __init__(self, credentials: Sequence[Mapping[str, Any]] = ()) -> None:
        self._by_id = {str(c["id"]): c for c in credentials}

    def fetch(self, url: str) -> Mapping[str, Any] | None:
        return self._by_id.get(url)


# --- helpers ---------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _node_id(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _describe_context_problem(exc: Exception) -> tuple[str, str, str]:
    if isinstance(exc, TooComplexError):
        return (
            f"{_LER}{'verification-timeout' if exc.timed_out else 'too-complex'}",
            "Too complex to verify",
            f"This verifier stopped checking the signature: {exc.reason}. Genuine credentials "
            "are never built like this; the document may be an attempt to slow verifiers down.",
        )
    if isinstance(exc, ContextNotPinnedError):
        return (
            f"{_VCDM}PARSING_ERROR",
            "Unknown vocabulary",
            f"The document uses the vocabulary {exc.url}, which this verifier does not hold. "
            "Verifiers never download vocabularies, so the document cannot be checked.",
        )
    return (
        f"{_SECURITY}PROOF_TRANSFORMATION_ERROR",
        "Content not covered by the vocabulary",
        f"Part of the document is not defined by its vocabulary, so a signature could not "
        f"protect it: {exc}",
    )


def _single_proof(document: Mapping[str, Any]) -> Mapping[str, Any] | str | None:
    proofs = _as_list(document.get("proof"))
    if not proofs:
        return None
    if len(proofs) > 1:
        return "several proofs (proof sets) are not supported by this verifier"
    proof = proofs[0]
    if not isinstance(proof, Mapping):
        return "the proof is not an object"
    return proof


def _check_key_and_proof(
    document: Mapping[str, Any],
    proof: Mapping[str, Any],
    *,
    key_check: str,
    purpose: str,
    owner: str | None,
    owner_role: str,
    resolver: DidResolver | None,
    loader: OfflineDocumentLoader | None,
    now: datetime,
) -> list[Check]:
    """Resolve the proof's key (checking it belongs to ``owner``), then check the signature."""
    checks: list[Check] = []
    if proof.get("type") != PROOF_TYPE or proof.get("cryptosuite") != CRYPTOSUITE:
        detail = (
            f"The proof is of type {proof.get('type')!r} with cryptosuite "
            f"{proof.get('cryptosuite')!r}; this verifier checks {PROOF_TYPE} with "
            f"{CRYPTOSUITE} only."
        )
        checks.append(_skipped(key_check, "Not checked: the proof type is not supported."))
        checks.append(
            _failed("proof", f"{_SECURITY}PROOF_VERIFICATION_ERROR", "Unsupported proof", detail)
        )
        return checks
    if proof.get("proofPurpose") != purpose:
        detail = (
            f"The signature was made for {proof.get('proofPurpose')!r}, but a {owner_role}'s "
            f"signature on this document must be for {purpose!r}."
        )
        checks.append(_skipped(key_check, "Not checked: the proof purpose is wrong."))
        checks.append(
            _failed(
                "proof",
                f"{_SECURITY}MISMATCHED_PROOF_PURPOSE_ERROR",
                "Signature made for another purpose",
                detail,
            )
        )
        return checks
    method_id = proof.get("verificationMethod")
    key: PublicKey | None = None
    try:
        key = resolve_verification_method(str(method_id), resolver, purpose)
    except KeyResolutionError as exc:
        checks.append(
            _failed(key_check, f"{_SECURITY}INVALID_VERIFICATION_METHOD", exc.title, exc.detail)
        )
    else:
        if owner is not None and key.controller != owner:
            checks.append(
                _failed(
                    key_check,
                    f"{_SECURITY}INVALID_VERIFICATION_METHOD",
                    f"Signed by someone other than the {owner_role}",
                    f"The document names {owner} as its {owner_role}, but it was signed with a key "
                    f"of {key.controller}.",
                )
            )
            key = None
        else:
            checks.append(
                _passed(key_check, f"Signing key {method_id} belongs to {key.controller}.")
            )
    if key is None:
        checks.append(_skipped("proof", "Not checked: the signing key could not be trusted."))
        return checks
    expires = proof.get("expires")
    if expires is not None:
        try:
            expired = _parse_time(expires) <= now
        except ValueError:
            checks.append(
                _failed(
                    "proof",
                    f"{_SECURITY}MALFORMED_PROOF_ERROR",
                    "Malformed signature",
                    f"The proof's expiry {expires!r} is not a date.",
                )
            )
            return checks
        if expired:
            checks.append(
                _failed(
                    "proof",
                    f"{_SECURITY}PROOF_VERIFICATION_ERROR",
                    "Signature expired",
                    f"The signature expired at {expires}.",
                )
            )
            return checks
    try:
        valid = verify_proof(document, proof, key, loader)
    except ProofError as exc:
        checks.append(
            _failed(
                "proof",
                f"{_SECURITY}MALFORMED_PROOF_ERROR",
                "Malformed signature",
                f"The proof cannot be read: {exc}.",
            )
        )
    except (ContextNotPinnedError, CanonicalizationError) as exc:
        checks.append(_failed("proof", *_describe_context_problem(exc)))
    else:
        if valid:
            checks.append(
                _passed("proof", "The signature matches the content: nothing was changed.")
            )
        else:
            checks.append(
                _failed(
                    "proof",
                    f"{_SECURITY}PROOF_VERIFICATION_ERROR",
                    "Content changed after signing",
                    "The signature does not match the content. The document was changed after it "
                    "was signed (even one character counts), or it was not signed with this key.",
                )
            )
    return checks


# --- credentials -----------------------------------------------------------------------------


def _structure_check(document: Any, expected_type: str) -> tuple[Check, bool]:
    name = "structure"
    if not isinstance(document, Mapping):
        return _failed(
            name,
            f"{_VCDM}PARSING_ERROR",
            "Not a JSON object",
            f"A {expected_type} must be a JSON object.",
        ), False
    contexts = _as_list(document.get("@context"))
    if not contexts or contexts[0] not in (CREDENTIALS_V2, CREDENTIALS_V1):
        return _failed(
            name,
            f"{_VCDM}PARSING_ERROR",
            "Not a W3C verifiable document",
            f"The first @context must be {CREDENTIALS_V2}.",
        ), False
    types = _as_list(document.get("type"))
    if expected_type not in types:
        return _failed(
            name,
            f"{_VCDM}PARSING_ERROR",
            f"Not a {expected_type}",
            f"The document's type does not include {expected_type}.",
        ), False
    if expected_type == "VerifiableCredential":
        if _node_id(document.get("issuer")) is None:
            return _failed(
                name,
                f"{_VCDM}PARSING_ERROR",
                "Issuer missing",
                "The credential does not say who issued it.",
            ), False
        if not _as_list(document.get("credentialSubject")):
            return _failed(
                name,
                f"{_VCDM}PARSING_ERROR",
                "Subject missing",
                "The credential does not say what or whom it is about.",
            ), False
    return _passed(name, f"The document is a well-formed {expected_type}."), True


def _validity_check(document: Mapping[str, Any], now: datetime) -> Check:
    name = "validity_period"
    start_key = "validFrom" if "validFrom" in document else "issuanceDate"
    end_key = "validUntil" if "validUntil" in document else "expirationDate"
    bounds: dict[str, datetime] = {}
    for key in (start_key, end_key):
        if key in document:
            try:
                bounds[key] = _parse_time(document[key])
            except ValueError:
                return _failed(
                    name,
                    f"{_VCDM}MALFORMED_VALUE_ERROR",
                    "Unreadable date",
                    f"{key} is {document[key]!r}, which is not a date and time.",
                )
    start, end = bounds.get(start_key), bounds.get(end_key)
    if start is not None and now < start:
        return _failed(
            name,
            f"{_LER}not-yet-valid",
            "Not valid yet",
            f"This credential only becomes valid on {document[start_key]}.",
        )
    if end is not None and now >= end:
        return _failed(
            name,
            f"{_LER}expired",
            "Expired",
            f"This credential stopped being valid on {document[end_key]}.",
        )
    if start is None and end is None:
        return _passed(name, "The credential states no validity period.")
    return _passed(name, "Today falls within the credential's validity period.")


STATUS_LIST_CACHE_SECONDS = 30.0
_status_list_verdicts: weakref.WeakKeyDictionary[Any, OrderedDict[bytes, tuple[Verdict, datetime]]]
_status_list_verdicts = weakref.WeakKeyDictionary()
_status_list_lock = threading.Lock()


def _verified_status_list(
    list_credential: Mapping[str, Any],
    resolver: DidResolver | None,
    loader: OfflineDocumentLoader | None,
    now: datetime,
) -> Verdict:
    """The status list credential's own verdict, remembered for a short while when it passes.

    Every credential of an issuer points at the same few status lists; verifying each list once
    per credential would double the cost of a presentation. A passing verdict is reused, for the
    very same bytes and the same resolver object, for ``STATUS_LIST_CACHE_SECONDS`` (or until the
    list's ``validUntil``): a withdrawn issuer key stops a status list passing within that time.
    """
    if resolver is None:
        return verify_credential(list_credential, resolver, None, now=now, loader=loader)
    digest = hashlib.sha256(orjson.dumps(list_credential, option=orjson.OPT_SORT_KEYS)).digest()
    with _status_list_lock:
        cache = _status_list_verdicts.get(resolver)
        cached = cache.get(digest) if cache is not None else None
        if cached is not None and now < cached[1]:
            return cached[0]
    verdict = verify_credential(list_credential, resolver, None, now=now, loader=loader)
    if verdict.verified:
        until = now + timedelta(seconds=STATUS_LIST_CACHE_SECONDS)
        valid_until = list_credential.get("validUntil")
        if valid_until is not None:
            with contextlib.suppress(ValueError, TypeError):
                until = min(until, _parse_time(valid_until))
        with _status_list_lock, contextlib.suppress(TypeError):
            cache = _status_list_verdicts.setdefault(resolver, OrderedDict())
            cache[digest] = (verdict, until)
            while len(cache) > 64:
                cache.popitem(last=False)
    return verdict


@functools.lru_cache(maxsize=32)
def _decoded_list(encoded: str) -> StatusList:
    """A status list decoded once: every credential of an issuer points at the same few lists
    (GZIP of 16 KiB and more each). Read only here, so the shared object is never changed."""
    return StatusList.decode(encoded)


def _status_check(
    document: Mapping[str, Any],
    issuer: str | None,
    resolver: DidResolver | None,
    status_fetcher: StatusListFetcher | None,
    loader: OfflineDocumentLoader | None,
    now: datetime,
) -> Check:
    name = "status"
    entries = _as_list(document.get("credentialStatus"))
    if not entries:
        return _passed(
            name, "The issuer gave this credential no status list: it cannot be revoked."
        )
    if status_fetcher is None:
        return _skipped(name, "Not checked: this verifier was given no way to read status lists.")
    notes = []
    for entry in entries:
        if not isinstance(entry, Mapping) or entry.get("type") != "BitstringStatusListEntry":
            kind = entry.get("type") if isinstance(entry, Mapping) else entry
            return _failed(
                name,
                f"{_STATUS}STATUS_VERIFICATION_ERROR",
                "Unsupported status",
                f"The status entry of type {kind!r} is not supported; only "
                "BitstringStatusListEntry is.",
            )
        purpose = entry.get("statusPurpose")
        url = entry.get("statusListCredential")
        try:
            index = int(str(entry.get("statusListIndex")))
            if index < 0:
                raise ValueError
        except ValueError:
            return _failed(
                name,
                f"{_STATUS}STATUS_VERIFICATION_ERROR",
                "Unreadable status entry",
                f"statusListIndex {entry.get('statusListIndex')!r} is not a number.",
            )
        list_credential = status_fetcher.fetch(str(url)) if isinstance(url, str) else None
        if list_credential is None:
            return _failed(
                name,
                f"{_STATUS}STATUS_RETRIEVAL_ERROR",
                "Status list unavailable",
                f"The status list {url} could not be retrieved, so whether the "
                "credential was revoked is unknown.",
            )
        list_verdict = _verified_status_list(list_credential, resolver, loader, now)
        if not list_verdict.verified:
            reasons = "; ".join(p.title for p in list_verdict.problems)
            return _failed(
                name,
                f"{_STATUS}STATUS_VERIFICATION_ERROR",
                "Status list not trustworthy",
                f"The status list {url} failed its own checks ({reasons}).",
            )
        list_issuer = _node_id(list_credential.get("issuer"))
        if list_issuer != issuer:
            return _failed(
                name,
                f"{_STATUS}STATUS_VERIFICATION_ERROR",
                "Status list from someone else",
                f"The status list {url} was issued by {list_issuer}, not by the "
                f"credential's issuer {issuer}.",
            )
        subjects = _as_list(list_credential.get("credentialSubject"))
        subject = subjects[0] if subjects and isinstance(subjects[0], Mapping) else {}
        if subject.get("statusPurpose") != purpose:
            return _failed(
                name,
                f"{_STATUS}STATUS_VERIFICATION_ERROR",
                "Status purpose mismatch",
                f"The entry is for {purpose!r} but the list {url} is for "
                f"{subject.get('statusPurpose')!r}.",
            )
        try:
            status_list = _decoded_list(str(subject.get("encodedList")))
            if index >= status_list.size:
                return _failed(
                    name,
                    f"{_STATUS}STATUS_LIST_LENGTH_ERROR",
                    "Status index out of range",
                    f"Index {index} is beyond the {status_list.size} entries of {url}.",
                )
            is_set = status_list.get(index)
        except StatusListError as exc:
            return _failed(
                name,
                f"{_STATUS}STATUS_VERIFICATION_ERROR",
                "Unreadable status list",
                f"The status list {url} cannot be read: {exc}.",
            )
        if is_set and purpose == "revocation":
            return _failed(
                name,
                f"{_LER}revoked",
                "Revoked",
                "The issuer has revoked this credential: it is no longer valid.",
            )
        if is_set and purpose == "suspension":
            return _failed(
                name,
                f"{_LER}suspended",
                "Suspended",
                "The issuer has suspended this credential for now.",
            )
        notes.append(f"{purpose}: {'set' if is_set else 'not set'}")
    return _passed(name, f"Status checked ({', '.join(notes)}): not revoked or suspended.")


def verify_credential(
    credential: Any,
    resolver: DidResolver | None,
    status_fetcher: StatusListFetcher | None = None,
    *,
    now: datetime | None = None,
    loader: OfflineDocumentLoader | None = None,
) -> Verdict:
    """Verify a Verifiable Credential (Data Model 2.0, ``eddsa-rdfc-2022`` proof) from any issuer.

    ``resolver`` finds ``did:web`` (or other) controller documents; ``did:key`` needs none.
    ``status_fetcher`` reads Bitstring status lists (the status check is skipped without one).
    Never raises for bad input: every problem becomes a failed check.
    """
    now = now or datetime.now(UTC)
    structure, well_formed = _structure_check(credential, "VerifiableCredential")
    checks = [structure]
    credential_id = _node_id(credential) if isinstance(credential, Mapping) else None
    if not well_formed:
        for name in ("issuer_key", "proof", "validity_period", "status"):
            checks.append(_skipped(name, "Not checked: the document is not a credential."))
        return Verdict("credential", credential_id, tuple(checks))
    issuer = _node_id(credential.get("issuer"))
    proof = _single_proof(credential)
    if isinstance(proof, Mapping):
        checks.extend(
            _check_key_and_proof(
                credential,
                proof,
                key_check="issuer_key",
                purpose="assertionMethod",
                owner=issuer,
                owner_role="issuer",
                resolver=resolver,
                loader=loader,
                now=now,
            )
        )
    else:
        detail = proof or "The credential carries no signature (proof)."
        checks.append(_skipped("issuer_key", "Not checked: there is no usable proof."))
        checks.append(
            _failed(
                "proof",
                f"{_SECURITY}PROOF_VERIFICATION_ERROR",
                "Not signed",
                detail[:1].upper() + detail[1:],
            )
        )
    checks.append(_validity_check(credential, now))
    checks.append(_status_check(credential, issuer, resolver, status_fetcher, loader, now))
    return Verdict("credential", credential_id, tuple(checks))


# --- presentations ---------------------------------------------------------------------------


def verify_presentation(
    presentation: Any,
    resolver: DidResolver | None,
    status_fetcher: StatusListFetcher | None = None,
    *,
    now: datetime | None = None,
    challenge: str | None = None,
    domain: str | None = None,
    require_proof: bool = False,
    loader: OfflineDocumentLoader | None = None,
) -> Verdict:
    """Verify a Verifiable Presentation and every credential embedded in it.

    When ``challenge`` or ``domain`` is given, the presentation's proof must carry exactly that
    value (replay protection). An unsigned presentation passes only when ``require_proof`` is
    False and no challenge or domain is expected; its credentials are still checked one by one.
    """
    now = now or datetime.now(UTC)
    structure, well_formed = _structure_check(presentation, "VerifiablePresentation")
    checks = [structure]
    presentation_id = _node_id(presentation) if isinstance(presentation, Mapping) else None
    if not well_formed:
        for name in ("holder_key", "proof", "challenge", "domain", "expiry", "credentials"):
            checks.append(_skipped(name, "Not checked: the document is not a presentation."))
        return Verdict("presentation", presentation_id, tuple(checks))

    proof = _single_proof(presentation)
    holder = _node_id(presentation.get("holder"))
    if isinstance(proof, Mapping):
        checks.extend(
            _check_key_and_proof(
                presentation,
                proof,
                key_check="holder_key",
                purpose="authentication",
                owner=holder,
                owner_role="holder",
                resolver=resolver,
                loader=loader,
                now=now,
            )
        )
    elif proof is None and not (require_proof or challenge or domain):
        checks.append(_skipped("holder_key", "Not checked: the presentation is not signed."))
        checks.append(
            _skipped(
                "proof",
                "The presentation is not signed; each credential in it is checked on its own.",
            )
        )
    else:
        detail = (
            proof
            if isinstance(proof, str)
            else (
                "The presentation is not signed, but this verifier requires a signed presentation."
            )
        )
        checks.append(_skipped("holder_key", "Not checked: there is no usable proof."))
        checks.append(
            _failed(
                "proof",
                f"{_SECURITY}PROOF_VERIFICATION_ERROR",
                "Not signed",
                detail[:1].upper() + detail[1:],
            )
        )
    proof_map: Mapping[str, Any] = proof if isinstance(proof, Mapping) else {}

    if challenge is None:
        checks.append(_skipped("challenge", "No challenge was expected."))
    elif proof_map.get("challenge") == challenge:
        checks.append(_passed("challenge", "The presentation answers the expected challenge."))
    else:
        checks.append(
            _failed(
                "challenge",
                f"{_SECURITY}INVALID_CHALLENGE_ERROR",
                "Wrong or missing challenge",
                "The presentation was not made in answer to this request; it may be a replay of an "
                "older one.",
            )
        )

    if domain is None:
        checks.append(_skipped("domain", "No audience (domain) was expected."))
    elif domain in _as_list(proof_map.get("domain")):
        checks.append(_passed("domain", f"The presentation is addressed to {domain}."))
    else:
        checks.append(
            _failed(
                "domain",
                f"{_SECURITY}INVALID_DOMAIN_ERROR",
                "Meant for someone else",
                f"The presentation was addressed to {proof_map.get('domain')!r}, not to {domain}.",
            )
        )

    until = presentation.get("validUntil")
    if until is None:
        checks.append(_passed("expiry", "The presentation states no expiry."))
    else:
        try:
            expired = _parse_time(until) <= now
        except ValueError:
            checks.append(
                _failed(
                    "expiry",
                    f"{_VCDM}MALFORMED_VALUE_ERROR",
                    "Unreadable date",
                    f"validUntil is {until!r}, which is not a date and time.",
                )
            )
        else:
            if expired:
                checks.append(
                    _failed(
                        "expiry",
                        f"{_LER}expired",
                        "Presentation expired",
                        f"This presentation stopped being valid on {until}.",
                    )
                )
            else:
                checks.append(_passed("expiry", f"The presentation is valid until {until}."))

    nested: list[Verdict] = []
    for item in _as_list(presentation.get("verifiableCredential")):
        nested.append(verify_credential(item, resolver, status_fetcher, now=now, loader=loader))
    failed = [v for v in nested if not v.verified]
    if not nested:
        checks.append(_passed("credentials", "The presentation holds no credentials."))
    elif failed:
        names = ", ".join(v.id or "(no id)" for v in failed)
        reasons = "; ".join(p.title for v in failed for p in v.problems)
        checks.append(
            _failed(
                "credentials",
                f"{_LER}credential-failed",
                "A credential failed its checks",
                f"{len(failed)} of {len(nested)} credentials did not verify ({names}): {reasons}.",
            )
        )
    else:
        checks.append(_passed("credentials", f"All {len(nested)} credentials verified."))
    return Verdict("presentation", presentation_id, tuple(checks), tuple(nested))
