"""GET /api/v1/vocabulary: every code of the public contract, each with its Chinese label.

The completeness tests read the domains' vocabulary modules themselves: a new enum, or a new
member of one, without its label (or not served) fails here.
"""

from __future__ import annotations

import inspect
from enum import StrEnum
from types import ModuleType

import httpx
import pytest

from app.households import vocabulary as households
from app.monitoring import vocabulary as monitoring
from app.progress import household_schemas as progress
from app.quality import vocabulary as quality
from app.records import vocabulary as records
from app.users.models import Role
from app.vocabulary import service
from app.vocabulary.schemas import Vocabulary
from app.webhooks import vocabulary as webhooks
from tests.assertions import problem
from tests.builders import World

URL = "/api/v1/vocabulary"
MODULES = (households, records, progress, monitoring, quality, webhooks)
# Enums of those modules that are no codes of the contract's documents.
NOT_SERVED = {
    records.Outcome,  # a write's outcome: the Record-Outcome header and sync results
    quality.IssueRecordType,  # the kind of record an issue names (household, member, …)
}


def enums_of(module: ModuleType) -> list[type[StrEnum]]:
    return [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, StrEnum)
        and value is not StrEnum
        and value.__module__ == module.__name__
    ]


SERVED_ENUMS = {codes: name for name, (codes, _) in service.SOURCES.items()}


@pytest.mark.parametrize(
    "enum",
    [e for module in MODULES for e in enums_of(module) if e not in NOT_SERVED] + [Role],
    ids=lambda e: f"{e.__module__}.{e.__name__}",
)
def test_every_enum_is_served_and_every_member_has_a_label(enum: type[StrEnum]) -> None:
    assert enum in SERVED_ENUMS, f"{enum.__name__} is not in app.vocabulary.service.SOURCES"
    _, labels = service.SOURCES[SERVED_ENUMS[enum]]
    missing = [member.value for member in enum if not labels.get(member.value)]
    assert missing == [], f"{enum.__name__}: no Chinese label for {missing}"


def test_every_vocabulary_is_a_field_of_the_document() -> None:
    assert list(Vocabulary.model_fields) == list(service.SOURCES)
    # The monitoring and quality label tables are served whole.
    for enum in monitoring.LABELS:
        assert enum in SERVED_ENUMS, enum
    for enum in quality.LABELS:
        assert enum in SERVED_ENUMS, enum


def test_a_code_without_a_label_is_an_error() -> None:
    with pytest.raises(service.UnlabelledCode, match="'in_poverty'"):
        service.terms(households.Status, {"new": "新识别"})


async def test_the_vocabulary_lists_codes_in_order_with_labels(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.get(URL, headers=world.headers("secretary_a1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == list(service.SOURCES)
    for name, (codes, labels) in service.SOURCES.items():
        assert [term["code"] for term in body[name]] == [str(c) for c in codes], name
        assert all(term["label"] == labels[term["code"]] for term in body[name]), name
    assert {"code": "ordinary", "label": "一般农户"} in body["household_origin"]
    assert {"code": "lifted", "label": "已脱贫(享受政策)"} in body["household_status"]
    assert {"code": "marginal", "label": "边缘易致贫户"} in body["case_category"]
    assert {"code": "town_staff", "label": "乡镇工作人员"} in body["role"]
    assert {"code": "food", "label": "不愁吃"} in body["indicator"]
    events = {term["code"] for term in body["webhook_event_type"]}
    assert {"monitoring.case_identified", "monitoring.case_cleared"} <= events
    # Every label is Chinese text for people, not the code again.
    for name, terms in body.items():
        for term in terms:
            assert term["label"] and term["label"] != term["code"], (name, term)


@pytest.mark.parametrize("who", ["officer_a1", "town_a1", "admin_b"])
async def test_any_signed_in_caller_reads_it_and_revalidates(
    client: httpx.AsyncClient, world: World, who: str
) -> None:
    response = await client.get(URL, headers=world.headers(who))
    assert response.status_code == 200, response.text
    tag = response.headers["ETag"]
    assert response.headers["Cache-Control"] == "private, max-age=3600"
    again = await client.get(URL, headers={**world.headers(who), "If-None-Match": f'"x", {tag}'})
    assert again.status_code == 304
    assert again.headers["ETag"] == tag and again.content == b""
    other = await client.get(URL, headers={**world.headers(who), "If-None-Match": '"old"'})
    assert other.status_code == 200


async def test_without_a_token_it_is_401(client: httpx.AsyncClient) -> None:
    problem(await client.get(URL), 401, "not_authenticated")


def test_the_example_is_the_document() -> None:
    schema = Vocabulary.model_json_schema()
    assert schema["examples"] == [service.get_vocabulary().model_dump(mode="json")]
