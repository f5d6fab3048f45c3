"""``POST /v1/verify``: anyone sends a credential or a presentation and gets a verdict.

The body is read and checked here before any verification work: at most
``WALLET_VERIFY_MAX_BYTES`` of JSON, nested at most ``WALLET_VERIFY_MAX_DEPTH`` levels, at most
``WALLET_VERIFY_MAX_VALUES`` values and ``WALLET_VERIFY_MAX_CREDENTIALS`` credentials in a
presentation; past a limit the answer is a 413 or 422 naming the field and the rule. The checks
run in the verifier's bounded pool (429 with ``Retry-After`` when it has no room before the
deadline).
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request

from ler.credentials import Verdict
from ler.credentials.limits import DocumentLimits, document_problem
from ler.web import ApiError, JsonResponse, problem, too_many_requests
from services.wallet.verifier import Verifier
from services.wallet.verify_pool import VerificationBusy

router = APIRouter(tags=["verify"])

_BODY_SCHEMA = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "A Verifiable Credential or Presentation, "
                '{"credential": {...}} or {"presentation": {...}, "challenge": "...", '
                '"domain": "..."}',
            }
        }
    },
}


@router.post(
    "/v1/verify",
    summary="Verify a credential or a presentation (anyone)",
    description="Body: a Verifiable Credential or Presentation as is, or "
    '`{"credential": {...}}`, or `{"presentation": {...}, "challenge": ..., "domain": ...}`. '
    "Answers 200 with `verified` (authenticity), `issuer` and `trusted` (who issued it and "
    "whether this registry trusts them), every check, a problem per failed check and a warning "
    "per thing to know. Bodies past the verification limits get 413 or 422.",
    openapi_extra={"requestBody": _BODY_SCHEMA},
    response_class=JsonResponse,
)
async def verify(request: Request) -> JsonResponse:
    verifier: Verifier = request.app.state.verifier
    limits: DocumentLimits = request.app.state.verify_limits
    document = await read_document(request, limits)
    kind, target, challenge, domain = verify_request(document)
    try:
        if kind == "credential":
            verdict = await verifier.verify_credential(target)
        else:
            verdict = await verifier.verify_presentation(target, challenge=challenge, domain=domain)
    except VerificationBusy:
        raise too_many_requests(1.0, "verification is busy", "ler-wallet") from None
    return JsonResponse(verdict_body(verdict))


async def read_document(request: Request, limits: DocumentLimits) -> dict[str, Any]:
    """The JSON object of the request, within ``limits`` (413 or 422 otherwise)."""
    raw = await request.body()
    if len(raw) > limits.max_bytes:
        raise ApiError(
            413,
            f"a document to verify is at most {limits.max_bytes} bytes",
            [problem("body", f"at most {limits.max_bytes} bytes")],
        )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        rule = (
            f"nested at most {limits.max_depth} levels deep"
            if "depth" in str(exc)
            else "must be valid JSON"
        )
        raise ApiError(422, "the request is invalid", [problem("body", rule)]) from None
    if not isinstance(document, dict):
        raise ApiError(422, "the request is invalid", [problem("body", "must be an object")])
    found = document_problem(document, limits)
    if found is not None:
        raise ApiError(
            422,
            "the document is beyond what this verifier checks",
            [problem(found.field, found.rule)],
        )
    return document


def verify_request(body: dict[str, Any]) -> tuple[str, Any, str | None, str | None]:
    """What ``POST /v1/verify`` was asked: (kind, document, challenge, domain)."""
    extra = {"challenge", "domain"}
    for name in ("challenge", "domain"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise ApiError(422, "the request is invalid", [problem(name, "must be a string")])
    if "presentation" in body and set(body) <= {"presentation"} | extra:
        return "presentation", body["presentation"], body.get("challenge"), body.get("domain")
    if "credential" in body and set(body) == {"credential"}:
        return "credential", body["credential"], None, None
    types = body.get("type")
    types = types if isinstance(types, list) else [types]
    if "VerifiablePresentation" in types:
        return "presentation", body, None, None
    if "VerifiableCredential" in types:
        return "credential", body, None, None
    raise ApiError(
        422,
        "send a Verifiable Credential or Presentation",
        [
            problem(
                "body",
                "a VerifiableCredential, a VerifiablePresentation, "
                '{"credential": ...} or {"presentation": ...}',
            )
        ],
    )


def verdict_body(verdict: Verdict) -> dict[str, Any]:
    """The answer of ``POST /v1/verify``: the verdict, one RFC 9457 problem per failed check and
    one warning per issuer nobody vouches for (nested credentials' included, each naming the
    check and the credential), and a one-sentence ``summary``."""
    body = verdict.to_dict()
    problems: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []

    def collect(v: Verdict, credential: str | None) -> None:
        for check in v.checks:
            if check.problem is not None and not (
                check.name == "credentials" and v.kind == "presentation"
            ):
                item: dict[str, Any] = {**check.problem.to_dict(), "check": check.name}
                if credential is not None:
                    item["credential"] = credential
                problems.append(item)
        for warning in v.warnings:
            found: dict[str, Any] = {**warning.to_dict(), "check": "issuer"}
            if credential is not None:
                found["credential"] = credential
            warnings.append(found)
        for index, inner in enumerate(v.credentials):
            collect(inner, inner.id or f"verifiableCredential[{index}]")

    collect(verdict, None)
    if verdict.kind == "presentation" and not problems:
        problems.extend(
            {**c.problem.to_dict(), "check": c.name} for c in verdict.checks if c.problem
        )
    body["problems"] = problems
    body["warnings"] = warnings
    body["trusted"] = verdict.trusted
    body["summary"] = _summary(verdict, warnings)
    return body


def _summary(verdict: Verdict, warnings: list[dict[str, Any]]) -> str:
    what = "presentation" if verdict.kind == "presentation" else "credential"
    if not verdict.verified:
        return f"Not verified: this {what} failed a check (see problems)."
    if verdict.trusted:
        if verdict.issuer is not None and verdict.issuer.name:
            return f"Verified: genuine, and issued by {verdict.issuer.name}, a trusted issuer."
        return f"Verified: every credential in this {what} is genuine and from a trusted issuer."
    if verdict.issuer is not None:
        return (
            "Genuine but not vouched for: the content is unchanged since it was signed, but its "
            "issuer is not one this registry trusts (see warnings)."
        )
    count = len({w.get("credential") for w in warnings})
    return (
        f"Genuine but not vouched for: {count} credential(s) come from issuers this registry "
        "does not trust (see warnings)."
    )
