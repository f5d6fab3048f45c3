"""The shipped taxonomy data is whole and stable, and the loader rejects broken data clearly."""

from __future__ import annotations

import copy
import itertools
import json
import re
from importlib import resources
from typing import Any

import pytest

from ler.skills import (
    CURRENT_VERSION,
    TaxonomyError,
    UnknownRoleError,
    UnknownSkillError,
    available_versions,
    is_skill_id,
    load_taxonomy,
    normalize_label,
    normalize_soc,
    taxonomy_from_document,
)

pytestmark = pytest.mark.unit

DATA = resources.files("ler.skills") / "data"


def raw(version: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (DATA / f"taxonomy-{version}.json").read_text(encoding="utf-8")
    )
    return document


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


VERSIONS = available_versions()


def test_the_data_file_declares_the_loaders_version() -> None:
    assert CURRENT_VERSION in VERSIONS
    assert raw(CURRENT_VERSION)["version"] == CURRENT_VERSION
    assert load_taxonomy().version == CURRENT_VERSION
    assert max(VERSIONS, key=version_key) == CURRENT_VERSION, "the newest file is the current one"


@pytest.mark.parametrize("version", VERSIONS)
def test_each_file_name_matches_its_declared_version(version: str) -> None:
    assert raw(version)["version"] == version
    assert load_taxonomy(version).version == version


@pytest.mark.parametrize("version", VERSIONS)
def test_skill_ids_are_unique_and_well_formed(version: str) -> None:
    ids = [skill["id"] for skill in raw(version)["skills"]]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    for skill_id in ids:
        assert re.fullmatch(r"onet:\d+\.[A-Z]\.\d+(\.[a-z])?|ler:[a-z]+\.[a-z0-9-]+", skill_id)
        assert is_skill_id(skill_id)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_skill_states_framework_source_and_licence(version: str) -> None:
    for skill in raw(version)["skills"]:
        assert skill["name"].strip(), skill["id"]
        assert skill["description"].strip(), skill["id"]
        if skill["id"].startswith("onet:"):
            assert skill["framework"].startswith("O*NET 30."), skill["id"]
            assert skill["source"]["license"] == "CC BY 4.0", skill["id"]
        else:
            assert skill["framework"] == "LER-ECE curated", skill["id"]
            assert skill["source"]["license"] == "Apache-2.0", skill["id"]
        assert skill["framework"] in raw(version)["frameworks"]


@pytest.mark.parametrize("version", VERSIONS)
def test_every_mapping_and_role_refers_to_existing_skills(version: str) -> None:
    document = raw(version)
    ids = {skill["id"] for skill in document["skills"]}
    referenced: list[tuple[str, str]] = []
    for kind, entries in document["mappings"].items():
        for entry in entries:
            assert entry["skills"], f"{kind} entry {entry} maps to no skill"
            referenced += [(kind, s) for s in entry["skills"]]
    for role in document["roles"]:
        referenced += [(role["role_id"], s) for s in role["required"] + role.get("preferred", [])]
    assert [(where, s) for where, s in referenced if s not in ids] == []


@pytest.mark.parametrize("version", VERSIONS)
def test_every_role_is_complete(version: str) -> None:
    document = raw(version)
    mapped_soc = {entry["soc_code"] for entry in document["mappings"]["soc"]}
    role_ids = [role["role_id"] for role in document["roles"]]
    assert len(role_ids) == len(set(role_ids))
    for role in document["roles"]:
        assert len(role["required"]) >= 3, role["role_id"]
        assert not set(role["required"]) & set(role.get("preferred", [])), role["role_id"]
        assert role["soc_code"] in mapped_soc, role["role_id"]
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", role["role_id"])


def test_the_roles_the_brief_names_are_shipped() -> None:
    roles = load_taxonomy(CURRENT_VERSION).roles
    by_soc = {role.soc_code for role in roles.values()}
    ece_and_ost = {"39-9011", "25-2011", "25-9042", "11-9031", "39-9032"}
    general = {"43-4051", "31-9092", "31-1121", "15-1252"}
    assert ece_and_ost | general <= by_soc
    assert "afterschool-program-leader" in roles


def test_released_ids_keep_their_meaning_in_every_later_version() -> None:
    """Ids are never removed or reused: a later version keeps each id with the same framework."""
    pinned = {
        "onet:2.A.1.a": "Reading Comprehension",
        "onet:2.A.1.b": "Active Listening",
        "onet:2.B.1.e": "Instructing",
        "onet:2.C.6": "Education and Training",
        "ler:ece.child-development": "Child Growth and Development",
        "ler:ece.pediatric-cpr": "Pediatric CPR",
        "ler:ece.child-abuse-reporting": "Recognizing and Reporting Child Abuse and Neglect",
    }
    first = load_taxonomy("2026.1")
    assert {i: first.skill(i).name for i in pinned} == pinned
    ordered = sorted(VERSIONS, key=version_key)
    for older, newer in itertools.pairwise(ordered):
        old, new = load_taxonomy(older), load_taxonomy(newer)
        for skill_id, skill in old.skills.items():
            assert skill_id in new.skills, f"{skill_id} vanished in {newer}"
            assert new.skills[skill_id].framework.split(" ")[0] == skill.framework.split(" ")[0]


def test_sources_file_states_licences_and_release() -> None:
    text = (DATA / "SOURCES.md").read_text(encoding="utf-8")
    for needed in ("CC BY 4.0", "Apache-2.0", "O*NET 30.0", "USDOL/ETA", CURRENT_VERSION):
        assert needed in text


def test_lookups_fail_with_clear_errors() -> None:
    taxonomy = load_taxonomy()
    with pytest.raises(UnknownRoleError, match=r"no role 'astronaut'.*preschool-teacher"):
        taxonomy.role("astronaut")
    with pytest.raises(UnknownSkillError, match=r"ler:ece\.flying"):
        taxonomy.skill("ler:ece.flying")
    with pytest.raises(TaxonomyError, match=r"no taxonomy version '1999\.1'"):
        load_taxonomy("1999.1")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("39-9011", "39-9011"),
        ("399011", "39-9011"),
        (" 39-9011.00 ", "39-9011"),
        ("15-1299.08", "15-1299"),
        ("39-90", None),
        ("childcare", None),
    ],
)
def test_soc_codes_normalize(given: str, expected: str | None) -> None:
    assert normalize_soc(given) == expected


def test_labels_normalize() -> None:
    assert normalize_label("Health, Safety & Nutrition") == "health safety and nutrition"
    assert normalize_label("Food Handler\u2019s  Card") == "food handlers card"
    assert normalize_label("CPR/First-Aid") == "cpr first aid"
    assert normalize_label("Educación Infantil") == "educación infantil"


# Invalid documents: each a copy of the shipped file with one thing broken.


@pytest.fixture(scope="module")
def shipped() -> dict[str, Any]:
    return raw(CURRENT_VERSION)


def broken(document: dict[str, Any]) -> TaxonomyError:
    with pytest.raises(TaxonomyError) as caught:
        taxonomy_from_document(document, source="test.json")
    return caught.value


def test_the_shipped_document_is_valid_as_is(shipped: dict[str, Any]) -> None:
    assert taxonomy_from_document(copy.deepcopy(shipped)).version == CURRENT_VERSION


def test_unknown_skill_in_a_mapping_is_named_with_its_place(shipped: dict[str, Any]) -> None:
    document = copy.deepcopy(shipped)
    document["mappings"]["credential_types"][0]["skills"].append("ler:ece.juggling")
    error = broken(document)
    assert error.problems == (
        "mappings.credential_types[0].skills[9]: unknown skill id 'ler:ece.juggling'",
    )
    assert "test.json" in str(error)


def test_unknown_skill_in_a_role_and_too_few_required(shipped: dict[str, Any]) -> None:
    document = copy.deepcopy(shipped)
    document["roles"][0]["preferred"].append("onet:9.Z.9.z")
    document["roles"][1]["required"] = document["roles"][1]["required"][:2]
    problems = broken(document).problems
    assert any(p.startswith("roles[0].preferred[") and "'onet:9.Z.9.z'" in p for p in problems)
    assert "roles[1].required: needs at least 3 skills, has 2" in problems


def test_duplicate_and_malformed_skill_ids(shipped: dict[str, Any]) -> None:
    document = copy.deepcopy(shipped)
    document["skills"].append(copy.deepcopy(document["skills"][0]))
    document["skills"][1]["id"] = "Active Listening"
    problems = broken(document).problems
    assert any("duplicate skill id 'onet:2.A.1.a'" in p for p in problems)
    assert any(p.startswith("skills[1].id: 'Active Listening' is neither") for p in problems)


def test_an_alias_may_not_mean_two_things(shipped: dict[str, Any]) -> None:
    document = copy.deepcopy(shipped)
    document["mappings"]["credential_types"][1]["aliases"].append("cda")
    problems = broken(document).problems
    assert any("'cda' already means something else" in p for p in problems)


def test_a_skill_name_shared_by_two_skills_needs_an_explicit_mapping(
    shipped: dict[str, Any],
) -> None:
    document = copy.deepcopy(shipped)
    document["mappings"]["competencies"] = [
        c for c in document["mappings"]["competencies"] if c["label"] != "Mathematics"
    ]
    problems = broken(document).problems
    assert any("share the name 'mathematics'" in p for p in problems)


def test_bad_version_and_role_soc(shipped: dict[str, Any]) -> None:
    document = copy.deepcopy(shipped)
    document["version"] = "v2"
    document["roles"][0]["soc_code"] = "99-9999"
    problems = broken(document).problems
    assert "version: 'v2' is not YEAR.N (e.g. '2026.1')" in problems
    assert "roles[0].soc_code: SOC code '99-9999' has no mapping" in problems


def test_a_document_that_is_not_an_object() -> None:
    assert broken([]).problems[0] == "document: must be an object"  # type: ignore[arg-type]
