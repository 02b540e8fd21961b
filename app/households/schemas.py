"""Household and member bodies: the public JSON vocabulary of the 建档立卡 record."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.i18n import Text, text_of
from app.core.types import NoNul
from app.households import id_numbers
from app.households.vocabulary import (
    Attribute,
    CadreLevel,
    Cause,
    Health,
    IdentificationStandard,
    Labour,
    MemberAdditionReason,
    MemberRemovalReason,
    Relation,
    Status,
)
from app.monitoring.vocabulary import Origin

_PHONE_RE = re.compile(r"\+?[0-9][0-9 -]{4,19}")


def _id_number(value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    try:
        return id_numbers.normalize(value)
    except id_numbers.InvalidIdNumber as exc:
        raise ValueError(text_of(exc)) from None


def _phone(value: str | None) -> str | None:
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if not _PHONE_RE.fullmatch(value):
        raise ValueError(
            Text("a phone number: digits, optionally + at the start, spaces or dashes")
        )
    return value


IdNumber = Annotated[
    str | None,
    AfterValidator(_id_number),
    Field(
        description="GB 11643 resident ID number (18 characters; 15-digit numbers are upgraded). "
        "Omit or null when the person has none yet: the record is then flagged.",
        examples=["11010519491231002X"],
    ),
]
Phone = Annotated[str | None, AfterValidator(_phone), Field(examples=["13805351234"])]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Year = Annotated[int, Field(ge=1980, le=2100)]


class PairingCadre(BaseModel):
    """A pairing cadre (帮扶责任人) and the period of the pairing."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    level: CadreLevel
    unit: str | None = Field(default=None, max_length=100, examples=["莘县农业农村局"])
    start_date: date
    end_date: date | None = None

    @model_validator(mode="after")
    def _dates(self) -> PairingCadre:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(Text("end_date is before start_date"))
        return self


_MEMBER_EXAMPLE: dict[str, Any] = {
    "name": "张建国",
    "id_number": "371522196803151234",
    "relation": "head",
    "health": "chronic",
    "labour": "weak",
    "in_school": False,
    "medical_insurance": True,
}


class MemberBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    id_number: IdNumber = None
    relation: Relation
    health: Health = Health.healthy
    labour: Labour = Labour.normal
    in_school: bool = False
    medical_insurance: bool = False


class MemberCreate(MemberBase):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_MEMBER_EXAMPLE]})

    added_reason: MemberAdditionReason = MemberAdditionReason.initial


class MemberUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"health": "serious", "labour": "lost"}]}
    )

    name: Name | None = None
    id_number: IdNumber = None
    relation: Relation | None = None
    health: Health | None = None
    labour: Labour | None = None
    in_school: bool | None = None
    medical_insurance: bool | None = None


_MEMBER_PUBLIC_EXAMPLE: dict[str, Any] = {
    **_MEMBER_EXAMPLE,
    "id": "5b0f3c9e-2f64-4f0e-8f7a-3d2a1c9b8e70",
    "id_number": "371522********1234",
    "id_number_missing": False,
    "birth_date": None,
    "added_reason": "initial",
    "updated_at": "2026-11-20T08:30:00Z",
}


class MemberPublic(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_MEMBER_PUBLIC_EXAMPLE]})

    id: uuid.UUID
    name: str
    id_number: str | None = Field(description="Masked (371522********123X) without pii:read.")
    id_number_missing: bool = Field(description="True when the member has no ID number yet.")
    birth_date: date | None = Field(description="From the ID number; null when masked.")
    relation: Relation
    health: Health
    labour: Labour
    in_school: bool
    medical_insurance: bool
    added_reason: str
    updated_at: datetime


class MemberRemoval(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reason": "death"}]})

    reason: MemberRemovalReason


_HOUSEHOLD_EXAMPLE: dict[str, Any] = {
    "number": "3715221012010001",
    "village_code": "371522101201",
    "group_name": "三组",
    "head_name": "张建国",
    "phone": "13805351234",
    "origin": "registered",
    "attribute": "dibao",
    "status": "in_poverty",
    "main_cause": "illness",
    "other_causes": ["lack_labour"],
    "identification_standard": "national",
    "identified_year": 2014,
    "planned_exit_year": 2017,
    "exit_year": None,
    "pairing_cadres": [
        {"name": "李明", "level": "county", "unit": "莘县农业农村局", "start_date": "2016-03-01"}
    ],
}


def _check_causes(main: Cause | None, others: list[Cause] | None) -> None:
    if others is None:
        return
    if len(set(others)) != len(others):
        raise ValueError(Text("other_causes lists a cause twice"))
    if main is not None and main in others:
        raise ValueError(Text("other_causes repeats main_cause"))


# The fields of the 建档立卡 register. An ordinary household (一般农户) has none of them: it
# was never identified as poor, so it has no status, attribute, cause or years of the register.
REGISTER_FIELDS = (
    "attribute",
    "status",
    "main_cause",
    "other_causes",
    "identification_standard",
    "identified_year",
    "planned_exit_year",
    "exit_year",
)
# What a registered household gets when they are not given; the others of these it must have.
_REGISTER_DEFAULTS: dict[str, Any] = {
    "status": Status.new,
    "identification_standard": IdentificationStandard.national,
}
_REQUIRED_WHEN_REGISTERED = ("attribute", "main_cause", "identified_year")


def not_on_register(name: str) -> Text:
    """Why an ordinary household cannot have `name`."""
    return Text(
        "an ordinary household (一般农户) is not on the register: it has no {name}", name=name
    )


_ORDINARY_EXAMPLE: dict[str, Any] = {
    "number": "3715221012010102",
    "village_code": "371522101201",
    "group_name": "二组",
    "head_name": "孙立新",
    "phone": "13905357788",
    "origin": "ordinary",
    "members": [
        {"name": "孙立新", "id_number": "371522197203041235", "relation": "head"},
    ],
}


class HouseholdCreate(BaseModel):
    """A registered household (建档立卡户, the default) or an ordinary one (一般农户).

    A registered household needs `attribute`, `main_cause` and `identified_year` (`status`
    defaults to `new`); an ordinary household has none of the register's fields (`attribute`,
    `status`, `main_cause`, `other_causes`, `identification_standard`, the years): sending one
    is a 422 naming it.
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [_HOUSEHOLD_EXAMPLE, _ORDINARY_EXAMPLE]},
    )

    number: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z-]{4,32}$")] = Field(
        description="户编号, the national household number."
    )
    village_code: Annotated[str, StringConstraints(max_length=21)]
    group_name: str | None = Field(default=None, max_length=100, description="自然村/组")
    head_name: Name
    phone: Phone = None
    # Before the register's fields: their validators read it.
    origin: Origin = Field(
        default=Origin.registered,
        description="registered (建档立卡户) or ordinary (一般农户); cannot change later.",
    )
    attribute: Attribute | None = Field(default=None, validate_default=True)
    status: Status | None = Field(
        default=None,
        validate_default=True,
        description="Registered households only; default new. An ordinary household has none.",
    )
    main_cause: Cause | None = Field(default=None, validate_default=True)
    other_causes: list[Cause] = Field(default_factory=list, max_length=13)
    identification_standard: IdentificationStandard | None = Field(
        default=None,
        validate_default=True,
        description="Registered households only; default national.",
    )
    identified_year: Year | None = Field(default=None, validate_default=True)
    planned_exit_year: Year | None = None
    exit_year: Year | None = None
    pairing_cadres: list[PairingCadre] = Field(default_factory=list, max_length=20)
    members: list[MemberCreate] = Field(default_factory=list, max_length=30)

    # Field validators, not a model validator, so that each error names its field; they see
    # the fields declared before them in info.data (absent when those were invalid).
    @field_validator(*REGISTER_FIELDS)
    @classmethod
    def _register(cls, value: Any, info: ValidationInfo) -> Any:
        name = info.field_name
        assert name is not None
        origin = info.data.get("origin")
        if origin is Origin.ordinary:
            if value is not None and value != []:
                raise ValueError(not_on_register(name))
            return value
        if value is None and origin is Origin.registered:
            if name in _REGISTER_DEFAULTS:
                return _REGISTER_DEFAULTS[name]
            if name in _REQUIRED_WHEN_REGISTERED:
                raise PydanticCustomError("missing", "Field required for a registered household")
        if name == "other_causes":
            _check_causes(info.data.get("main_cause"), value)
        identified = info.data.get("identified_year")
        later = name in ("planned_exit_year", "exit_year")
        if later and value is not None and identified is not None and value < identified:
            raise ValueError(Text("{name} is before identified_year", name=name))
        return value

    @field_validator("members")
    @classmethod
    def _one_head(cls, value: list[MemberCreate]) -> list[MemberCreate]:
        if sum(1 for m in value if m.relation is Relation.head) > 1:
            raise ValueError(Text("only one member can be the head"))
        return value


OverrideReason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), NoNul
]


class HouseholdUpdate(BaseModel):
    """PATCH body: only the fields to change. number and village_code cannot be changed here,
    nor origin (sending the current one is allowed). An ordinary household takes none of the
    register's fields."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"phone": "13905351234", "status": "lifted", "exit_year": 2019},
                {
                    "status": "lifted",
                    "exit_year": 2020,
                    "override_reason": "2020年脱贫验收已通过, 收入核算待补录",
                },
            ]
        },
    )

    group_name: str | None = Field(default=None, max_length=100)
    head_name: Name | None = None
    phone: Phone = None
    origin: Origin | None = Field(
        default=None, description="Cannot change: only the household's current origin is accepted."
    )
    attribute: Attribute | None = None
    status: Status | None = None
    main_cause: Cause | None = None
    other_causes: list[Cause] | None = Field(default=None, max_length=13)
    identification_standard: IdentificationStandard | None = None
    identified_year: Year | None = None
    planned_exit_year: Year | None = None
    exit_year: Year | None = None
    pairing_cadres: list[PairingCadre] | None = Field(default=None, max_length=20)
    override_reason: OverrideReason | None = Field(
        default=None,
        description="Setting status lifted or lifted_no_support from a poor status (new, "
        "in_poverty, returned) while the exit rule does not hold (see the household's "
        "progress, `exit`): the county admin gives the reason, kept in the household's "
        "history. Without it such a change is a 422 `exit_rule_not_met`; from anyone else "
        "it is a 403.",
    )

    @field_validator("other_causes")
    @classmethod
    def _unique(cls, value: list[Cause] | None) -> list[Cause] | None:
        _check_causes(None, value)
        return value


class HouseholdMove(BaseModel):
    """A household transferred to another village of the county."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"village_code": "371522101202", "reason": "易地搬迁"}]},
    )

    village_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
    reason: Annotated[str, StringConstraints(max_length=200), NoNul] | None = None


class HouseholdPublic(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_HOUSEHOLD_EXAMPLE,
                    "id": "6f1c2e4a-8b3d-4c5e-9f70-1a2b3c4d5e6f",
                    "phone": "138****1234",
                    "household_size": 1,
                    "members": [_MEMBER_PUBLIC_EXAMPLE],
                    "flags": [],
                    "pii_masked": True,
                    "version": 3,
                    "created_at": "2016-03-01T02:00:00Z",
                    "updated_at": "2026-11-20T08:30:00Z",
                }
            ]
        }
    )

    id: uuid.UUID
    number: str
    village_code: str
    group_name: str | None
    head_name: str
    phone: str | None = Field(description="Masked (138****1234) without pii:read.")
    origin: Origin = Field(description="registered (建档立卡户) or ordinary (一般农户).")
    attribute: Attribute | None = Field(description="Null for an ordinary household.")
    status: Status | None = Field(description="Null for an ordinary household.")
    main_cause: Cause | None = Field(description="Null for an ordinary household.")
    other_causes: list[Cause]
    identification_standard: IdentificationStandard | None = Field(
        description="Null for an ordinary household."
    )
    identified_year: int | None = Field(description="Null for an ordinary household.")
    planned_exit_year: int | None
    exit_year: int | None
    pairing_cadres: list[PairingCadre]
    household_size: int
    members: list[MemberPublic]
    flags: list[Literal["member_without_id_number", "no_members", "no_head"]] = Field(
        description="Data-quality flags: records to complete or check against the paper form."
    )
    pii_masked: bool = Field(description="True when ID numbers and phones are masked for you.")
    version: int = Field(description="Bumped by every change; the ETag is derived from it.")
    created_at: datetime
    updated_at: datetime


class HouseholdSearch(BaseModel):
    """Exact search by a member's ID number (sent in the body so it never lands in URL logs)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"id_number": "11010519491231002X"}]}
    )

    id_number: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=15, max_length=18),
        AfterValidator(_id_number),
    ]


def member_public(member: Any, *, reveal_pii: bool) -> MemberPublic:
    number = member.id_number
    return MemberPublic(
        id=member.id,
        name=member.name,
        id_number=(number if reveal_pii else id_numbers.mask(number)) if number else None,
        id_number_missing=number is None,
        birth_date=member.birth_date if reveal_pii else None,
        relation=member.relation,
        health=member.health,
        labour=member.labour,
        in_school=member.in_school,
        medical_insurance=member.medical_insurance,
        added_reason=member.added_reason,
        updated_at=member.updated_at,
    )


def household_public(household: Any, members: list[Any], *, reveal_pii: bool) -> HouseholdPublic:
    flags: list[Literal["member_without_id_number", "no_members", "no_head"]] = []
    if any(m.id_number is None for m in members):
        flags.append("member_without_id_number")
    if not members:
        flags.append("no_members")
    elif not any(m.relation == Relation.head for m in members):
        flags.append("no_head")
    phone = household.phone
    return HouseholdPublic(
        id=household.id,
        number=household.number,
        village_code=household.village_code,
        group_name=household.group_name,
        head_name=household.head_name,
        phone=(phone if reveal_pii else id_numbers.mask_phone(phone)) if phone else None,
        origin=household.origin,
        attribute=household.attribute,
        status=household.status,
        main_cause=household.main_cause,
        other_causes=household.other_causes,
        # Stored (the column has a default), meaningless off the register.
        identification_standard=None
        if household.origin == Origin.ordinary
        else household.identification_standard,
        identified_year=household.identified_year,
        planned_exit_year=household.planned_exit_year,
        exit_year=household.exit_year,
        pairing_cadres=household.pairing_cadres,
        household_size=len(members),
        members=[member_public(m, reveal_pii=reveal_pii) for m in members],
        flags=flags,
        pii_masked=not reveal_pii,
        version=household.version,
        created_at=household.created_at,
        updated_at=household.updated_at,
    )
