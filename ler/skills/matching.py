"""Interpret: records broken down into skills, and a person's skills matched against a role.

Pure functions over small typed inputs; the only data they read is a :class:`Taxonomy`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ler.skills.taxonomy import RoleProfile, Taxonomy, is_skill_id, normalize_soc

REQUIRED_WEIGHT = 1.0
"""Weight of a required skill in the match score."""

PREFERRED_WEIGHT = 0.5
"""Weight of a preferred skill in the match score: it counts, but half as much as a required one."""


class RecordType(StrEnum):
    """The kinds of record a person's skills can come from."""

    EMPLOYMENT = "employment"
    LEARNING = "learning"
    CREDENTIAL = "credential"


class EvidenceSource(StrEnum):
    """Which field of a record a skill was read from."""

    SOC_CODE = "soc_code"
    JOB_TITLE = "job_title"
    CREDENTIAL_TYPE = "credential_type"
    COMPETENCY = "competency"
    SKILL_ID = "skill_id"
    TITLE = "title"


@dataclass(frozen=True, slots=True)
class RecordInput:
    """What the skills rules need to know about one record.

    ``verified`` is true only for a record whose verification stands (verified by its issuer or
    a reviewer, credential not revoked); the caller decides. ``competencies`` holds free-text
    competency labels and/or skill ids (``onet:2.A.1.a``, ``ler:ece.child-development``).
    """

    record_id: str
    record_type: RecordType
    verified: bool
    title: str | None = None
    soc_code: str | None = None
    competencies: tuple[str, ...] = ()
    credential_type: str | None = None
    credential_id: str | None = None

    def __post_init__(self) -> None:
        if not self.record_id:
            raise ValueError("record_id must be a non-empty string")
        if not isinstance(self.record_type, RecordType):
            try:
                object.__setattr__(self, "record_type", RecordType(self.record_type))
            except ValueError:
                kinds = ", ".join(t.value for t in RecordType)
                raise ValueError(
                    f"record_type must be one of {kinds}, not {self.record_type!r}"
                ) from None
        if isinstance(self.competencies, str) or not all(
            isinstance(c, str) for c in self.competencies
        ):
            raise ValueError("competencies must be a sequence of strings")
        object.__setattr__(self, "competencies", tuple(self.competencies))


@dataclass(frozen=True, slots=True)
class SkillEvidence:
    """One skill a record supports, and how the rules found it."""

    skill_id: str
    record_id: str
    record_type: RecordType
    verified: bool
    source: EvidenceSource
    matched_on: str
    credential_id: str | None = None


@dataclass(frozen=True, slots=True)
class PersonSkill:
    """One of a person's skills with all the evidence for it."""

    skill_id: str
    evidence: tuple[SkillEvidence, ...]

    @property
    def verified(self) -> bool:
        """Whether at least one verified record supports the skill."""
        return any(e.verified for e in self.evidence)

    @property
    def record_ids(self) -> tuple[str, ...]:
        """Ids of the verified records that support the skill, in order of evidence."""
        return _unique(e.record_id for e in self.evidence if e.verified)

    @property
    def unverified_record_ids(self) -> tuple[str, ...]:
        """Ids of the records supporting the skill that are not verified."""
        return _unique(e.record_id for e in self.evidence if not e.verified)


@dataclass(frozen=True, slots=True)
class SkillMatch:
    """A role skill the person has, with the records (and credentials) that show it."""

    skill_id: str
    required: bool
    record_ids: tuple[str, ...]
    credential_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MissingSkill:
    """A role skill no record of the person's shows."""

    skill_id: str
    required: bool


@dataclass(frozen=True, slots=True)
class MatchResult:
    """How a person's skills compare with a role.

    ``matched``, ``unverified`` and ``missing`` split the role's skills (required first, then
    preferred, in the role's order) into disjoint groups: shown by a verified record; shown only by
    unverified records; not shown at all. ``score`` counts ``matched`` only (see :func:`match`).
    """

    role_id: str
    matched: tuple[SkillMatch, ...]
    unverified: tuple[SkillMatch, ...]
    missing: tuple[MissingSkill, ...]
    score: float
    required_matched: int
    required_total: int

    @property
    def meets_required(self) -> bool:
        """Whether verified records show every required skill."""
        return self.required_matched == self.required_total

    def as_dict(self, taxonomy: Taxonomy | None = None) -> dict[str, object]:
        """A JSON-ready form; with a taxonomy, each skill also carries its name and version."""

        def skill(item: SkillMatch | MissingSkill) -> dict[str, object]:
            out: dict[str, object] = {"skill_id": item.skill_id, "required": item.required}
            if taxonomy is not None and item.skill_id in taxonomy.skills:
                out["name"] = taxonomy.skills[item.skill_id].name
            if isinstance(item, SkillMatch):
                out["record_ids"] = list(item.record_ids)
                out["credential_ids"] = list(item.credential_ids)
            return out

        result: dict[str, object] = {
            "role_id": self.role_id,
            "score": self.score,
            "meets_required": self.meets_required,
            "required_matched": self.required_matched,
            "required_total": self.required_total,
            "matched": [skill(m) for m in self.matched],
            "unverified": [skill(m) for m in self.unverified],
            "missing": [skill(m) for m in self.missing],
        }
        if taxonomy is not None:
            result["taxonomy_version"] = taxonomy.version
        return result


def skills_for_record(record: RecordInput, taxonomy: Taxonomy) -> list[SkillEvidence]:
    """Break one record down into skills, one :class:`SkillEvidence` per skill.

    Rules, in order (a skill found by an earlier rule is not repeated by a later one):

    1. ``soc_code`` (any record type): the occupation's skills. For an employment record whose
       SOC code is absent or unmapped, the ``title`` is looked up as a job title instead.
    2. ``credential_type``: the skills the credential type attests (name or alias).
    3. ``competencies``: each entry is a known skill id (taken as is) or a free-text label
       (normalized, then looked up among mapped labels, aliases and skill names).
    4. For a learning or credential record that rules 2 and 3 gave nothing, the ``title`` is
       tried as a credential type, then as a competency label.

    Inputs that match nothing add nothing (see :func:`unrecognized_inputs`).
    """
    found: dict[str, SkillEvidence] = {}

    def add(skill_ids: Iterable[str], source: EvidenceSource, matched_on: str) -> None:
        for skill_id in skill_ids:
            if skill_id not in found:
                found[skill_id] = SkillEvidence(
                    skill_id=skill_id,
                    record_id=record.record_id,
                    record_type=record.record_type,
                    verified=record.verified,
                    source=source,
                    matched_on=matched_on,
                    credential_id=record.credential_id,
                )

    soc_skills = taxonomy.skills_for_soc(record.soc_code) if record.soc_code else ()
    if soc_skills:
        add(soc_skills, EvidenceSource.SOC_CODE, normalize_soc(record.soc_code or "") or "")
    elif record.record_type is RecordType.EMPLOYMENT and record.title:
        code = taxonomy.soc_for_title(record.title)
        if code:
            add(taxonomy.skills_for_soc(code), EvidenceSource.JOB_TITLE, record.title)

    explicit = len(found)
    if record.credential_type:
        add(
            taxonomy.skills_for_credential_type(record.credential_type),
            EvidenceSource.CREDENTIAL_TYPE,
            record.credential_type,
        )
    for competency in record.competencies:
        source = (
            EvidenceSource.SKILL_ID
            if is_skill_id(competency.strip())
            else (EvidenceSource.COMPETENCY)
        )
        add(taxonomy.skills_for_competency(competency), source, competency)

    if len(found) == explicit and record.record_type is not RecordType.EMPLOYMENT and record.title:
        add(
            taxonomy.skills_for_credential_type(record.title)
            or taxonomy.skills_for_competency(record.title),
            EvidenceSource.TITLE,
            record.title,
        )
    return list(found.values())


def unrecognized_inputs(record: RecordInput, taxonomy: Taxonomy) -> list[str]:
    """The fields of a record the mappings do not know, e.g. ``"competency 'Knitting'"``.

    For operators extending the mappings; it does not change what :func:`skills_for_record` gives.
    """
    unknown = []
    if record.soc_code and not taxonomy.skills_for_soc(record.soc_code):
        unknown.append(f"soc_code {record.soc_code!r}")
    if record.credential_type and not taxonomy.skills_for_credential_type(record.credential_type):
        unknown.append(f"credential_type {record.credential_type!r}")
    for competency in record.competencies:
        if not taxonomy.skills_for_competency(competency):
            unknown.append(f"competency {competency!r}")
    return unknown


def skills_for_records(records: Iterable[RecordInput], taxonomy: Taxonomy) -> list[SkillEvidence]:
    """:func:`skills_for_record` over many records, evidence in record order."""
    return [evidence for record in records for evidence in skills_for_record(record, taxonomy)]


def collect_skills(evidence: Iterable[SkillEvidence]) -> list[PersonSkill]:
    """Group evidence by skill: a person's skills, each with every record that supports it.

    Skills come in order of first evidence; this is what a wallet projection keeps per person.
    """
    grouped: dict[str, list[SkillEvidence]] = {}
    for item in evidence:
        grouped.setdefault(item.skill_id, []).append(item)
    return [PersonSkill(skill_id, tuple(items)) for skill_id, items in grouped.items()]


def match(role: RoleProfile, person_skills: Iterable[SkillEvidence]) -> MatchResult:
    """Compare a person's skill evidence with a role's required and preferred skills.

    A role skill is *matched* when at least one verified record supports it (listing the verified
    record and credential ids), *unverified* when only unverified records do, and *missing*
    otherwise. The score is the weighted share of the role's skills that are matched::

        score = (1.0 * matched required + 0.5 * matched preferred)
                / (1.0 * all required + 0.5 * all preferred)

    rounded to 4 decimals, from 0.0 to 1.0. Unverified skills add nothing to the score.
    """
    verified: dict[str, list[SkillEvidence]] = {}
    unverified: dict[str, list[SkillEvidence]] = {}
    for item in person_skills:
        (verified if item.verified else unverified).setdefault(item.skill_id, []).append(item)

    matched: list[SkillMatch] = []
    pending: list[SkillMatch] = []
    missing: list[MissingSkill] = []
    got = total = 0.0
    required_matched = 0
    for skill_id, required in _role_skills(role):
        weight = REQUIRED_WEIGHT if required else PREFERRED_WEIGHT
        total += weight
        if skill_id in verified:
            matched.append(_skill_match(skill_id, required, verified[skill_id]))
            got += weight
            required_matched += required
        elif skill_id in unverified:
            pending.append(_skill_match(skill_id, required, unverified[skill_id]))
        else:
            missing.append(MissingSkill(skill_id, required))
    return MatchResult(
        role_id=role.role_id,
        matched=tuple(matched),
        unverified=tuple(pending),
        missing=tuple(missing),
        score=round(got / total, 4),
        required_matched=required_matched,
        required_total=len(_unique(role.required)),
    )


def _role_skills(role: RoleProfile) -> list[tuple[str, bool]]:
    seen: set[str] = set()
    out = []
    for skill_id, required in [(s, True) for s in role.required] + [
        (s, False) for s in role.preferred
    ]:
        if skill_id not in seen:
            seen.add(skill_id)
            out.append((skill_id, required))
    return out


def _skill_match(skill_id: str, required: bool, evidence: list[SkillEvidence]) -> SkillMatch:
    return SkillMatch(
        skill_id=skill_id,
        required=required,
        record_ids=_unique(e.record_id for e in evidence),
        credential_ids=_unique(e.credential_id for e in evidence if e.credential_id),
    )


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))
