"""Records broken down into skills, and a person with mixed records matched against roles."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from ler.skills import (
    EvidenceSource,
    RecordInput,
    RecordType,
    RoleProfile,
    SkillEvidence,
    Taxonomy,
    collect_skills,
    load_taxonomy,
    match,
    skills_for_record,
    skills_for_records,
    taxonomy_from_document,
    unrecognized_inputs,
)

pytestmark = pytest.mark.unit


def _skill(skill_id: str, name: str) -> dict[str, Any]:
    return {
        "id": skill_id,
        "name": name,
        "description": f"{name}.",
        "framework": "LER-ECE curated",
        "category": "Test",
        "source": {"name": "test", "license": "Apache-2.0"},
    }


@pytest.fixture(scope="module")
def small() -> Taxonomy:
    """A taxonomy small enough that every expected set below can be checked by eye."""
    return taxonomy_from_document(
        {
            "version": "2000.1",
            "skills": [
                _skill("ler:t.caring", "Caring"),
                _skill("ler:t.safety", "Safety"),
                _skill("ler:t.planning", "Planning"),
                _skill("ler:t.first-aid", "First Aid"),
                _skill("ler:t.songs", "Songs"),
                _skill("ler:t.budget", "Budget"),
            ],
            "mappings": {
                "soc": [
                    {
                        "soc_code": "39-9011",
                        "title": "Childcare Workers",
                        "aliases": ["Nanny"],
                        "skills": ["ler:t.caring", "ler:t.safety"],
                    }
                ],
                "credential_types": [
                    {"credential_type": "First Aid", "aliases": [], "skills": ["ler:t.first-aid"]}
                ],
                "competencies": [
                    {"label": "Lesson Plans", "aliases": [], "skills": ["ler:t.planning"]}
                ],
            },
            "roles": [
                {
                    "role_id": "helper",
                    "title": "Helper",
                    "soc_code": "39-9011",
                    "description": "Helps.",
                    "required": ["ler:t.caring", "ler:t.safety", "ler:t.first-aid"],
                    "preferred": ["ler:t.planning", "ler:t.songs", "ler:t.budget"],
                }
            ],
        }
    )


def test_mixed_verified_and_unverified_records_split_the_role(small: Taxonomy) -> None:
    records = [
        RecordInput("job", RecordType.EMPLOYMENT, verified=True, soc_code="39-9011.00"),
        RecordInput("fa", RecordType.CREDENTIAL, verified=False, credential_type="first aid"),
        RecordInput("course", RecordType.LEARNING, verified=True, competencies=("lesson plans",)),
        RecordInput("self", RecordType.LEARNING, verified=False, competencies=("ler:t.caring",)),
        RecordInput("songs", RecordType.LEARNING, verified=False, competencies=("Songs",)),
    ]
    result = match(small.role("helper"), skills_for_records(records, small))

    assert [(m.skill_id, m.required, m.record_ids) for m in result.matched] == [
        ("ler:t.caring", True, ("job",)),  # the unverified "self" record adds nothing here
        ("ler:t.safety", True, ("job",)),
        ("ler:t.planning", False, ("course",)),
    ]
    assert [(m.skill_id, m.required, m.record_ids) for m in result.unverified] == [
        ("ler:t.first-aid", True, ("fa",)),
        ("ler:t.songs", False, ("songs",)),
    ]
    assert [(m.skill_id, m.required) for m in result.missing] == [("ler:t.budget", False)]
    # (2 required + 0.5 * 1 preferred) / (3 required + 0.5 * 3 preferred) = 2.5 / 4.5
    assert result.score == pytest.approx(0.5556)
    assert (result.required_matched, result.required_total) == (2, 3)
    assert not result.meets_required


def test_verifying_the_last_required_record_completes_the_match(small: Taxonomy) -> None:
    records = [
        RecordInput("job", RecordType.EMPLOYMENT, verified=True, soc_code="399011"),
        RecordInput("fa", RecordType.CREDENTIAL, verified=True, credential_type="First Aid"),
    ]
    result = match(small.role("helper"), skills_for_records(records, small))
    assert result.meets_required
    assert result.unverified == ()
    assert result.score == pytest.approx(3 / 4.5, abs=1e-4)


def test_no_records_means_everything_missing(small: Taxonomy) -> None:
    result = match(small.role("helper"), [])
    assert result.matched == ()
    assert result.unverified == ()
    assert len(result.missing) == 6
    assert result.score == 0.0


def test_credential_ids_travel_with_the_match(small: Taxonomy) -> None:
    record = RecordInput(
        "fa",
        RecordType.CREDENTIAL,
        verified=True,
        credential_type="First Aid",
        credential_id="urn:uuid:1",
    )
    result = match(small.role("helper"), skills_for_record(record, small))
    assert result.matched[0].credential_ids == ("urn:uuid:1",)
    as_dict = result.as_dict(small)
    assert as_dict["taxonomy_version"] == "2000.1"
    assert as_dict["matched"] == [
        {
            "skill_id": "ler:t.first-aid",
            "required": True,
            "name": "First Aid",
            "record_ids": ["fa"],
            "credential_ids": ["urn:uuid:1"],
        }
    ]
    missing = as_dict["missing"]
    assert isinstance(missing, list)
    assert missing[0] == {"skill_id": "ler:t.caring", "required": True, "name": "Caring"}


def test_pete_against_the_shipped_child_care_worker_role() -> None:
    """Pete: verified work in child care and a verified CDA; first aid and mandated reporter
    training self-reported and not yet verified."""
    taxonomy = load_taxonomy("2026.1")
    records = [
        RecordInput(
            "r-job", RecordType.EMPLOYMENT, True, title="Child Care Worker", soc_code="39-9011.00"
        ),
        RecordInput(
            "r-cda",
            RecordType.CREDENTIAL,
            True,
            credential_type="Child Development Associate (CDA)",
            credential_id="urn:uuid:cda",
        ),
        RecordInput(
            "r-pfa", RecordType.CREDENTIAL, False, credential_type="Pediatric CPR & First Aid"
        ),
        RecordInput("r-mr", RecordType.LEARNING, False, title="Mandated Reporter Training"),
    ]
    result = match(taxonomy.role("childcare-worker"), skills_for_records(records, taxonomy))

    assert {m.skill_id: m.record_ids for m in result.matched} == {
        "ler:ece.child-development": ("r-job", "r-cda"),
        "ler:ece.health-safety": ("r-job", "r-cda"),
        "ler:ece.positive-guidance": ("r-job", "r-cda"),
        "ler:ece.learning-environment": ("r-job", "r-cda"),
        "ler:ece.family-engagement": ("r-job", "r-cda"),
        "onet:2.A.1.b": ("r-job",),
        "onet:2.B.1.a": ("r-job",),
    }
    assert {m.skill_id: m.record_ids for m in result.unverified} == {
        "ler:ece.pediatric-first-aid": ("r-pfa",),
        "ler:ece.pediatric-cpr": ("r-pfa",),
        "ler:ece.child-abuse-reporting": ("r-mr",),
    }
    assert {m.skill_id for m in result.missing} == {
        "ler:ece.infant-toddler-care",
        "ler:gen.food-safety",
    }
    assert (result.required_matched, result.required_total) == (3, 6)
    assert result.score == pytest.approx((3 + 0.5 * 4) / (6 + 0.5 * 6), abs=1e-4)

    verified = [dataclasses.replace(r, verified=True) for r in records]
    after = match(taxonomy.role("childcare-worker"), skills_for_records(verified, taxonomy))
    assert after.meets_required
    assert after.score == pytest.approx(0.8889)


def test_every_shipped_role_is_fully_matched_by_its_own_skills() -> None:
    taxonomy = load_taxonomy()
    for role in taxonomy.roles.values():
        record = RecordInput(
            "r", RecordType.LEARNING, True, competencies=role.required + role.preferred
        )
        result = match(role, skills_for_record(record, taxonomy))
        assert result.score == 1.0, role.role_id
        assert result.missing == (), role.role_id
        assert result.unverified == (), role.role_id


def test_employment_uses_the_soc_code_then_the_job_title(small: Taxonomy) -> None:
    by_code = skills_for_record(
        RecordInput("a", RecordType.EMPLOYMENT, True, soc_code="39-9011"), small
    )
    assert [(e.skill_id, e.source, e.matched_on) for e in by_code] == [
        ("ler:t.caring", EvidenceSource.SOC_CODE, "39-9011"),
        ("ler:t.safety", EvidenceSource.SOC_CODE, "39-9011"),
    ]
    by_title = skills_for_record(
        RecordInput("b", RecordType.EMPLOYMENT, True, title="  NANNY ", soc_code="99-9999"), small
    )
    assert [(e.skill_id, e.source) for e in by_title] == [
        ("ler:t.caring", EvidenceSource.JOB_TITLE),
        ("ler:t.safety", EvidenceSource.JOB_TITLE),
    ]
    assert (
        skills_for_record(RecordInput("c", RecordType.EMPLOYMENT, True, title="Pilot"), small) == []
    )


def test_learning_and_credential_titles_are_a_fallback_only(small: Taxonomy) -> None:
    course = RecordInput("a", RecordType.LEARNING, True, title="First Aid")
    assert [e.source for e in skills_for_record(course, small)] == [EvidenceSource.TITLE]
    labelled = RecordInput(
        "b", RecordType.LEARNING, True, title="First Aid", competencies=("Songs",)
    )
    assert [e.skill_id for e in skills_for_record(labelled, small)] == ["ler:t.songs"]
    job = RecordInput("c", RecordType.EMPLOYMENT, True, title="First Aid")
    assert skills_for_record(job, small) == []


def test_competencies_take_known_ids_and_labels_and_skip_the_rest(small: Taxonomy) -> None:
    record = RecordInput(
        "a",
        RecordType.LEARNING,
        False,
        competencies=("ler:t.budget", "ler:t.unknown", "Lesson-Plans!", "Knitting", "budget"),
    )
    evidence = skills_for_record(record, small)
    assert [(e.skill_id, e.source, e.verified) for e in evidence] == [
        ("ler:t.budget", EvidenceSource.SKILL_ID, False),
        ("ler:t.planning", EvidenceSource.COMPETENCY, False),
    ]
    assert unrecognized_inputs(record, small) == [
        "competency 'ler:t.unknown'",
        "competency 'Knitting'",
    ]


def test_shipped_credential_types_read_their_aliases() -> None:
    taxonomy = load_taxonomy()
    for spelling in ("CPR/First Aid", "cpr & first aid", "First Aid / CPR"):
        assert taxonomy.skills_for_credential_type(spelling) == (
            "ler:health.first-aid",
            "ler:health.cpr-aed",
        ), spelling
    assert "ler:ece.pediatric-cpr" in taxonomy.skills_for_credential_type("Pediatric First Aid/CPR")
    assert taxonomy.skills_for_credential_type("Food Handler's Card") == ("ler:gen.food-safety",)
    assert taxonomy.skills_for_credential_type("BLS") == ("ler:health.bls", "ler:health.cpr-aed")
    assert "ler:ece.child-development" in taxonomy.skills_for_credential_type("Associate ECE")
    assert taxonomy.skills_for_credential_type("Mandated Reporter Training") == (
        "ler:ece.child-abuse-reporting",
    )
    assert taxonomy.skills_for_credential_type("Pilot Licence") == ()


def test_shipped_competency_labels_and_skill_names() -> None:
    taxonomy = load_taxonomy()
    assert taxonomy.skills_for_competency("Child Growth & Development") == (
        "ler:ece.child-development",
    )
    assert taxonomy.skills_for_competency("reading comprehension") == ("onet:2.A.1.a",)
    assert taxonomy.skills_for_competency("Mathematics") == ("onet:2.A.1.e", "onet:2.C.4.a")
    assert taxonomy.skills_for_competency("onet:2.C.6") == ("onet:2.C.6",)


def test_collect_skills_keeps_every_supporting_record(small: Taxonomy) -> None:
    records = [
        RecordInput("job", RecordType.EMPLOYMENT, True, soc_code="39-9011"),
        RecordInput("self", RecordType.LEARNING, False, competencies=("Caring", "Songs")),
    ]
    skills = {s.skill_id: s for s in collect_skills(skills_for_records(records, small))}
    assert list(skills) == ["ler:t.caring", "ler:t.safety", "ler:t.songs"]
    assert skills["ler:t.caring"].verified
    assert skills["ler:t.caring"].record_ids == ("job",)
    assert skills["ler:t.caring"].unverified_record_ids == ("self",)
    assert not skills["ler:t.songs"].verified
    assert skills["ler:t.songs"].record_ids == ()


def test_record_input_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="record_type must be one of employment"):
        RecordInput("a", "hobby", True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="record_id"):
        RecordInput("", RecordType.LEARNING, True)
    with pytest.raises(ValueError, match="competencies"):
        RecordInput("a", RecordType.LEARNING, True, competencies="Caring")  # type: ignore[arg-type]
    assert RecordInput("a", RecordType.LEARNING, True, competencies=["x"]).competencies == ("x",)  # type: ignore[arg-type]


def test_role_profile_guards_its_lists() -> None:
    with pytest.raises(ValueError, match="at least one skill"):
        RoleProfile("r", "R", "39-9011", "", required=())
    with pytest.raises(ValueError, match="both required and preferred"):
        RoleProfile("r", "R", "39-9011", "", required=("a",), preferred=("a",))


def test_evidence_is_plain_data() -> None:
    evidence = SkillEvidence(
        "ler:t.caring", "r", RecordType.LEARNING, True, EvidenceSource.COMPETENCY, "Caring"
    )
    result = match(RoleProfile("x", "X", "39-9011", "", required=("ler:t.caring",)), [evidence])
    assert result.score == 1.0
    assert result.matched[0].credential_ids == ()
