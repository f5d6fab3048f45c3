"""The shipped skills taxonomy: skills, record-to-skill mappings and role profiles.

Each released version is one JSON file, ``data/taxonomy-<version>.json``, loaded as package data and
validated on load: a mapping or role that names a skill the file does not define is an error, not a
silently smaller match. Released files are never edited; a change is a new file with a new version
(see ``docs/skills.md``).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import TypeVar

CURRENT_VERSION = "2026.1"
"""The version :func:`load_taxonomy` loads when none is asked for."""

MIN_REQUIRED_SKILLS = 3
"""Every shipped role names at least this many required skills."""

ONET_ID = re.compile(r"^onet:\d+\.[A-Z]\.\d+(?:\.[a-z])?$")
"""O*NET Content Model element ids, e.g. ``onet:2.A.1.a`` or ``onet:2.C.6``."""

CURATED_ID = re.compile(r"^ler:[a-z]+\.[a-z0-9]+(?:-[a-z0-9]+)*$")
"""This project's curated ids, e.g. ``ler:ece.child-development``."""

ROLE_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
SOC_CODE = re.compile(r"^\d{2}-\d{4}$")
VERSION = re.compile(r"^\d{4}\.\d+$")
_DATA_FILE = re.compile(r"^taxonomy-(\d{4}\.\d+)\.json$")
_SOC_INPUT = re.compile(r"^(\d{2})-?(\d{4})(?:\.\d{2})?$")
_T = TypeVar("_T")


class TaxonomyError(ValueError):
    """The taxonomy data is invalid, or the asked-for version does not exist.

    ``problems`` lists every problem found, each naming where it is (``roles[2].required[0]``).
    """

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid skills taxonomy {source}:\n{listed}")


class UnknownSkillError(LookupError):
    """No skill with this id in the taxonomy."""


class UnknownRoleError(LookupError):
    """No role profile with this id in the taxonomy."""


def is_skill_id(value: str) -> bool:
    """Whether ``value`` has the shape of a skill id (O*NET element or curated), known or not."""
    return bool(ONET_ID.match(value) or CURATED_ID.match(value))


def normalize_label(text: str) -> str:
    """Normalize free text (competency labels, credential types, job titles) for lookup.

    Case, accents' composed forms, punctuation and spacing do not matter; ``&`` reads as ``and``
    and apostrophes vanish: ``"Health, Safety & Nutrition"`` and ``"health safety and nutrition"``
    are the same label, as are ``"Food Handler's Card"`` and ``"food handlers card"``.
    """
    text = unicodedata.normalize("NFKC", text).casefold().replace("&", " and ")
    text = re.sub(r"['\u2019`]", "", text)
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def normalize_soc(code: str) -> str | None:
    """Return the 6-digit SOC code (``39-9011``) of a SOC or O*NET-SOC code, or None if malformed.

    ``39-9011``, ``399011`` and ``39-9011.00`` all give ``39-9011``; an O*NET-SOC specialty such as
    ``15-1299.08`` gives its SOC detailed occupation ``15-1299``.
    """
    found = _SOC_INPUT.match(code.strip())
    return f"{found.group(1)}-{found.group(2)}" if found else None


@dataclass(frozen=True, slots=True)
class SkillSource:
    """Where a skill's definition comes from, and under which licence."""

    name: str
    license: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Skill:
    """One skill (or knowledge area) with a stable id."""

    id: str
    name: str
    description: str
    framework: str
    category: str
    source: SkillSource


@dataclass(frozen=True, slots=True)
class RoleProfile:
    """A role a person can be matched against: its required and preferred skills (ids)."""

    role_id: str
    title: str
    soc_code: str
    description: str
    required: tuple[str, ...]
    preferred: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.required:
            raise ValueError(f"role {self.role_id!r}: required must name at least one skill")
        overlap = set(self.required) & set(self.preferred)
        if overlap:
            raise ValueError(
                f"role {self.role_id!r}: skills both required and preferred: {sorted(overlap)}"
            )


@dataclass(frozen=True, slots=True)
class SocMapping:
    """The skills exercised in an occupation (SOC code), with job titles that name it."""

    soc_code: str
    title: str
    aliases: tuple[str, ...]
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CredentialMapping:
    """The skills a credential type attests, with other names it goes by."""

    credential_type: str
    aliases: tuple[str, ...]
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompetencyMapping:
    """The skills a free-text course competency label stands for."""

    label: str
    aliases: tuple[str, ...]
    skills: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Taxonomy:
    """One validated version of the taxonomy. Build it with :func:`load_taxonomy`."""

    version: str
    skills: Mapping[str, Skill]
    roles: Mapping[str, RoleProfile]
    soc: Mapping[str, SocMapping]
    credential_types: tuple[CredentialMapping, ...]
    competencies: tuple[CompetencyMapping, ...]
    _credential_index: Mapping[str, CredentialMapping] = field(repr=False)
    _competency_index: Mapping[str, tuple[str, ...]] = field(repr=False)
    _title_index: Mapping[str, str] = field(repr=False)

    def skill(self, skill_id: str) -> Skill:
        """The skill with this id; :class:`UnknownSkillError` if there is none."""
        try:
            return self.skills[skill_id]
        except KeyError:
            raise UnknownSkillError(f"no skill {skill_id!r} in taxonomy {self.version}") from None

    def role(self, role_id: str) -> RoleProfile:
        """The role profile with this id; :class:`UnknownRoleError` if there is none."""
        try:
            return self.roles[role_id]
        except KeyError:
            known = ", ".join(sorted(self.roles))
            raise UnknownRoleError(
                f"no role {role_id!r} in taxonomy {self.version}; known roles: {known}"
            ) from None

    def skills_for_soc(self, soc_code: str) -> tuple[str, ...]:
        """Skill ids of an occupation (any accepted SOC spelling); empty if unmapped."""
        code = normalize_soc(soc_code)
        mapping = self.soc.get(code) if code else None
        return mapping.skills if mapping else ()

    def soc_for_title(self, job_title: str) -> str | None:
        """The SOC code a job title names exactly (after normalization), or None."""
        return self._title_index.get(normalize_label(job_title))

    def skills_for_credential_type(self, credential_type: str) -> tuple[str, ...]:
        """Skill ids a credential type attests (its name or an alias); empty if unmapped."""
        mapping = self._credential_index.get(normalize_label(credential_type))
        return mapping.skills if mapping else ()

    def skills_for_competency(self, label: str) -> tuple[str, ...]:
        """Skill ids a competency label stands for; a known skill id stands for itself.

        Labels are the mapped labels and aliases, and every skill's own name where that name is
        unambiguous. Unknown labels and unknown ids give an empty tuple.
        """
        text = label.strip()
        if is_skill_id(text):
            return (text,) if text in self.skills else ()
        return self._competency_index.get(normalize_label(text), ())


def available_versions() -> tuple[str, ...]:
    """The taxonomy versions shipped with this package, oldest first."""
    versions = []
    for entry in (resources.files(__package__) / "data").iterdir():
        found = _DATA_FILE.match(entry.name)
        if found:
            versions.append(found.group(1))
    return tuple(sorted(versions, key=lambda v: tuple(int(p) for p in v.split("."))))


def load_taxonomy(version: str | None = None) -> Taxonomy:
    """Load and validate a shipped taxonomy version (default :data:`CURRENT_VERSION`).

    The result is cached and immutable. Raises :class:`TaxonomyError` for an unknown version or
    invalid data (every problem listed, each with its place in the file).
    """
    return _load(version or CURRENT_VERSION)


@functools.lru_cache(maxsize=8)
def _load(version: str) -> Taxonomy:
    name = f"taxonomy-{version}.json"
    if not VERSION.match(version) or version not in available_versions():
        raise TaxonomyError(
            name, [f"no taxonomy version {version!r}; shipped: {', '.join(available_versions())}"]
        )
    text = (resources.files(__package__) / "data" / name).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaxonomyError(name, [f"not valid JSON: {exc}"]) from None
    taxonomy = taxonomy_from_document(document, source=name)
    if taxonomy.version != version:
        raise TaxonomyError(
            name, [f"version: file declares {taxonomy.version!r}, its name says {version!r}"]
        )
    return taxonomy


def taxonomy_from_document(document: object, *, source: str = "<document>") -> Taxonomy:
    """Validate a taxonomy document (parsed JSON) and build a :class:`Taxonomy`.

    Checks ids (format, uniqueness), that every mapping and role names only defined skills, that
    roles have at least :data:`MIN_REQUIRED_SKILLS` required skills and a mapped SOC code, and
    that no normalized label, alias or job title means two different things.
    """
    reader = _Reader()
    root = reader.obj(document, "")
    version = reader.text(root, "version", "")
    if version and not VERSION.match(version):
        reader.problem("version", f"{version!r} is not YEAR.N (e.g. '2026.1')")

    skills: dict[str, Skill] = {}
    for path, item in reader.items(root, "skills", ""):
        skill = reader.skill(item, path)
        if skill is None:
            continue
        if skill.id in skills:
            reader.problem(f"{path}.id", f"duplicate skill id {skill.id!r}")
        skills[skill.id] = skill

    mappings = reader.obj(root.get("mappings"), "mappings")
    soc: dict[str, SocMapping] = {}
    titles: dict[str, str] = {}
    for path, item in reader.items(mappings, "soc", "mappings"):
        code = reader.text(item, "soc_code", path)
        if code and not SOC_CODE.match(code):
            reader.problem(f"{path}.soc_code", f"{code!r} is not a SOC code like '39-9011'")
        entry = SocMapping(
            soc_code=code,
            title=reader.text(item, "title", path),
            aliases=reader.texts(item, "aliases", path),
            skills=reader.skill_ids(item, "skills", path, skills),
        )
        if code in soc:
            reader.problem(f"{path}.soc_code", f"duplicate SOC code {code!r}")
        soc[code] = entry
        for label in (entry.title, *entry.aliases):
            reader.index(titles, label, code, f"{path} job title")

    credential_index: dict[str, CredentialMapping] = {}
    credentials = []
    for path, item in reader.items(mappings, "credential_types", "mappings"):
        cred = CredentialMapping(
            credential_type=reader.text(item, "credential_type", path),
            aliases=reader.texts(item, "aliases", path),
            skills=reader.skill_ids(item, "skills", path, skills),
        )
        credentials.append(cred)
        for label in (cred.credential_type, *cred.aliases):
            reader.index(credential_index, label, cred, f"{path} credential type")

    competency_index: dict[str, tuple[str, ...]] = {}
    competencies = []
    for path, item in reader.items(mappings, "competencies", "mappings"):
        comp = CompetencyMapping(
            label=reader.text(item, "label", path),
            aliases=reader.texts(item, "aliases", path),
            skills=reader.skill_ids(item, "skills", path, skills),
        )
        competencies.append(comp)
        for label in (comp.label, *comp.aliases):
            reader.index(competency_index, label, comp.skills, f"{path} competency label")
    # A skill's own name is a label too, unless an explicit mapping already decides it; a name two
    # skills share (O*NET has "Mathematics" as a skill and as knowledge) must be decided explicitly.
    by_name: dict[str, list[str]] = {}
    for skill in skills.values():
        by_name.setdefault(normalize_label(skill.name), []).append(skill.id)
    for name, ids in by_name.items():
        if name in competency_index:
            continue
        if len(ids) > 1:
            reader.problem(
                "skills",
                f"skills {ids} share the name {name!r}; add a competency mapping for it",
            )
        else:
            competency_index[name] = (ids[0],)

    roles: dict[str, RoleProfile] = {}
    for path, item in reader.items(root, "roles", ""):
        role = reader.role(item, path, skills, soc)
        if role is None:
            continue
        if role.role_id in roles:
            reader.problem(f"{path}.role_id", f"duplicate role id {role.role_id!r}")
        roles[role.role_id] = role

    if reader.problems:
        raise TaxonomyError(source, reader.problems)
    return Taxonomy(
        version=version,
        skills=MappingProxyType(skills),
        roles=MappingProxyType(roles),
        soc=MappingProxyType(soc),
        credential_types=tuple(credentials),
        competencies=tuple(competencies),
        _credential_index=MappingProxyType(credential_index),
        _competency_index=MappingProxyType(competency_index),
        _title_index=MappingProxyType(titles),
    )


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


class _Reader:
    """Reads untyped JSON into typed values, collecting every problem instead of stopping."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._index_owner: dict[tuple[int, str], str] = {}

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}" if path else message)

    def obj(self, value: object, path: str) -> Mapping[str, object]:
        if isinstance(value, Mapping):
            return value
        self.problem(path or "document", "must be an object")
        return {}

    def items(
        self, parent: Mapping[str, object], key: str, base: str
    ) -> Iterable[tuple[str, Mapping[str, object]]]:
        path = _join(base, key)
        value = parent.get(key)
        if not isinstance(value, list):
            self.problem(path, "must be a list")
            return []
        return [(f"{path}[{i}]", self.obj(item, f"{path}[{i}]")) for i, item in enumerate(value)]

    def text(
        self, item: Mapping[str, object], key: str, path: str, *, optional: bool = False
    ) -> str:
        value = item.get(key)
        if value is None and optional:
            return ""
        if not isinstance(value, str) or not value.strip():
            self.problem(_join(path, key), "must be a non-empty string")
            return ""
        return value

    def texts(self, item: Mapping[str, object], key: str, path: str) -> tuple[str, ...]:
        value = item.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.problem(_join(path, key), "must be a list of non-empty strings")
            return ()
        return tuple(value)

    def skill_ids(
        self, item: Mapping[str, object], key: str, path: str, skills: Mapping[str, Skill]
    ) -> tuple[str, ...]:
        ids = self.texts(item, key, path)
        for i, skill_id in enumerate(ids):
            if skill_id not in skills:
                self.problem(f"{path}.{key}[{i}]", f"unknown skill id {skill_id!r}")
        if len(set(ids)) != len(ids):
            self.problem(_join(path, key), "lists a skill more than once")
        return ids

    def index(self, index: dict[str, _T], label: str, value: _T, where: str) -> None:
        key = normalize_label(label)
        if not key:
            self.problem(where, f"label {label!r} is empty once normalized")
            return
        owner = self._index_owner.get((id(index), key))
        if owner is not None and index.get(key) != value:
            self.problem(where, f"{label!r} already means something else ({owner})")
            return
        self._index_owner[(id(index), key)] = where
        index[key] = value

    def skill(self, item: Mapping[str, object], path: str) -> Skill | None:
        skill_id = self.text(item, "id", path)
        if skill_id and not is_skill_id(skill_id):
            self.problem(
                f"{path}.id",
                f"{skill_id!r} is neither an O*NET id ('onet:2.A.1.a') "
                "nor a curated id ('ler:ece.child-development')",
            )
        source = self.obj(item.get("source"), f"{path}.source")
        built = Skill(
            id=skill_id,
            name=self.text(item, "name", path),
            description=self.text(item, "description", path),
            framework=self.text(item, "framework", path),
            category=self.text(item, "category", path),
            source=SkillSource(
                name=self.text(source, "name", f"{path}.source"),
                license=self.text(source, "license", f"{path}.source"),
                url=self.text(source, "url", f"{path}.source", optional=True) or None,
            ),
        )
        if skill_id.startswith("onet:") and not built.framework.startswith("O*NET"):
            self.problem(f"{path}.framework", "an onet: id must come from an O*NET framework")
        return built if skill_id else None

    def role(
        self,
        item: Mapping[str, object],
        path: str,
        skills: Mapping[str, Skill],
        soc: Mapping[str, SocMapping],
    ) -> RoleProfile | None:
        role_id = self.text(item, "role_id", path)
        if role_id and not ROLE_ID.match(role_id):
            self.problem(f"{path}.role_id", f"{role_id!r} is not a lower-case slug")
        soc_code = self.text(item, "soc_code", path)
        if soc_code and soc_code not in soc:
            self.problem(f"{path}.soc_code", f"SOC code {soc_code!r} has no mapping")
        required = self.skill_ids(item, "required", path, skills)
        preferred = self.skill_ids(item, "preferred", path, skills)
        if len(required) < MIN_REQUIRED_SKILLS:
            self.problem(
                f"{path}.required",
                f"needs at least {MIN_REQUIRED_SKILLS} skills, has {len(required)}",
            )
        both = sorted(set(required) & set(preferred))
        if both:
            self.problem(f"{path}.preferred", f"{both} are already required")
        title = self.text(item, "title", path)
        description = self.text(item, "description", path)
        if not role_id or not required or both:
            return None
        return RoleProfile(role_id, title, soc_code, description, required, preferred)
