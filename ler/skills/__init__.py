"""Skills: the shipped taxonomy, records broken down into skills, and matching against roles.

The primer's last step, *interpret*: credentials and work experience become skills in a standard
language, and a role's required skills are split into matched, unverified and missing ones.
Pure library: standard library only, no I/O besides reading the packaged taxonomy data.

    taxonomy = load_taxonomy()
    evidence = skills_for_records(records, taxonomy)
    result = match(taxonomy.role("preschool-teacher"), evidence)
"""

from ler.skills.matching import (
    PREFERRED_WEIGHT,
    REQUIRED_WEIGHT,
    EvidenceSource,
    MatchResult,
    MissingSkill,
    PersonSkill,
    RecordInput,
    RecordType,
    SkillEvidence,
    SkillMatch,
    collect_skills,
    match,
    skills_for_record,
    skills_for_records,
    unrecognized_inputs,
)
from ler.skills.taxonomy import (
    CURRENT_VERSION,
    CompetencyMapping,
    CredentialMapping,
    RoleProfile,
    Skill,
    SkillSource,
    SocMapping,
    Taxonomy,
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

__all__ = [
    "CURRENT_VERSION",
    "PREFERRED_WEIGHT",
    "REQUIRED_WEIGHT",
    "CompetencyMapping",
    "CredentialMapping",
    "EvidenceSource",
    "MatchResult",
    "MissingSkill",
    "PersonSkill",
    "RecordInput",
    "RecordType",
    "RoleProfile",
    "Skill",
    "SkillEvidence",
    "SkillMatch",
    "SkillSource",
    "SocMapping",
    "Taxonomy",
    "TaxonomyError",
    "UnknownRoleError",
    "UnknownSkillError",
    "available_versions",
    "collect_skills",
    "is_skill_id",
    "load_taxonomy",
    "match",
    "normalize_label",
    "normalize_soc",
    "skills_for_record",
    "skills_for_records",
    "taxonomy_from_document",
    "unrecognized_inputs",
]
