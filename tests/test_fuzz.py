"""Schemathesis over every operation of openapi/openapi.json, as each role and as an API client.

Every phase of schemathesis 4 runs, as each role:
- examples: the document's own examples;
- coverage: each parameter's and field's boundary values, missing parts and wrong types;
- fuzzing: valid requests with random values, valid ones naming objects that exist (a household,
  its member, records, a photo, regions), and invalid ones (negative generation);
- stateful: workflows that feed one answer's ids into the next request, along the links
  schemathesis infers from the document (`test_workflows_keep_the_contract`).
Every answer must be a documented status code with the documented content type and a body
matching the documented schema, and never a 5xx.

Cases are drawn with Hypothesis (a fixed seed per operation and role, so CI is reproducible) and
sent in the test's event loop through the `client` fixture; each one runs in a savepoint rolled
back afterwards, so every case sees the same world. `FIELDSYNC_FUZZ_EXAMPLES` (cases per kind,
default 4) and `FIELDSYNC_FUZZ_SEED` widen or vary the search.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation.drivers import CoverageGenerator
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.generation.overrides import Override
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tests.builders import COUNTY_A, VILLAGE_A1, World
from tests.clients.builders import make_client, minted_token
from tests.monitoring.case_helpers import case_body, make_alert, put_case
from tests.photos import tus_helpers as tus
from tests.photos.images import jpeg_bytes
from tests.photos.tus_helpers import sha256_hex
from tests.progress.household_builders import add_measure, add_snapshot, add_visit
from tests.test_openapi import PUBLISHED

SCHEMA = schemathesis.openapi.from_path(PUBLISHED)
EXAMPLES = int(os.environ.get("FIELDSYNC_FUZZ_EXAMPLES", "4"))
BASE_SEED = int(os.environ.get("FIELDSYNC_FUZZ_SEED", "0"))
# The coverage phase's cases (about 4,100 per role) are dealt out among the roles in turn, so the
# suite sends each once; FIELDSYNC_FUZZ_COVERAGE=all (`make fuzz`) sends every case as every role.
COVERAGE_ALL = os.environ.get("FIELDSYNC_FUZZ_COVERAGE") == "all"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Who calls: a user of each role, and a read-only API client without pii:read (registered by the
# county admin for county A).
ROLES = {
    "officer": "officer_a1",
    "first_secretary": "secretary_a1",
    # Town staff read as the others do (the authorization matrix holds their every answer);
    # not fuzzed separately, to keep the suite's time.
    "county_admin": "admin_a",
    "api_client": None,
}


@schemathesis.serializer("application/offset+octet-stream")
def _tus_chunk(ctx: Any, value: Any) -> bytes:
    """tus PATCH bodies are raw bytes."""
    return value if isinstance(value, bytes) else str(value).encode()


def _operations() -> list[tuple[str, str]]:
    found = []
    for result in SCHEMA.get_all_operations():
        operation = result.ok()
        found.append((operation.method.upper(), operation.path))
    return found


OPERATIONS = _operations()


@dataclass(frozen=True)
class Known:
    """Objects of the world the generated requests may name, as plain values (the ORM objects
    expire when a case's savepoint rolls back)."""

    path: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]  # If-Match of the household, tus headers that get past 412
    body: dict[str, str]  # fields of JSON bodies, at any depth


def _aim(value: Any, fields: dict[str, str]) -> Any:
    """`value` (a JSON body) with the fields named in `fields` set to known values."""
    if isinstance(value, dict):
        return {
            key: fields[key] if key in fields else _aim(item, fields) for key, item in value.items()
        }
    if isinstance(value, list):
        return [_aim(item, fields) for item in value]
    return value


async def _known(
    session: AsyncSession, client: httpx.AsyncClient, world: World, path: str, auth: dict[str, str]
) -> Known:
    """Objects in village A1 the operation may name: the world's household and its member, and
    the records, photo and upload made here (only those the path names: a photo costs)."""
    household = world.households["a1"]
    officer = world.users["officer_a1"]
    headers = world.headers("officer_a1")
    now = datetime.now(UTC).replace(microsecond=0)
    photo = jpeg_bytes()
    values = {
        "household_id": str(household.id),
        "code": VILLAGE_A1,
        "scope": COUNTY_A,
        "year": str(now.year),
    }
    if "{user_id}" in path:  # an account of county A (the county admin's to change)
        values["user_id"] = str(officer.id)
    if "{member_id}" in path:
        members = await client.get(f"/api/v1/households/{household.id}/members", headers=headers)
        values["member_id"] = members.json()[0]["id"]
    if "{visit_id}" in path:
        visit = await add_visit(session, household, author=officer, visited_at=now)
        values["visit_id"] = str(visit.id)
    if "{snapshot_id}" in path:
        snapshot = await add_snapshot(
            session,
            household,
            author=officer,
            year=now.year - 1,
            recorded_at=now - timedelta(days=40),
            wage_income="12000",
        )
        values["snapshot_id"] = str(snapshot.id)
    if "{measure_id}" in path:
        measure = await add_measure(session, household, author=officer, title="危房改造")
        values["measure_id"] = str(measure.id)
    if "{case_id}" in path:
        case = await put_case(client, world, case_body(household.id))
        assert case.status_code == 201, case.text
        values["case_id"] = case.json()["id"]
    if "{alert_id}" in path:
        values["alert_id"] = str((await make_alert(session, world, household)).id)
    if "{sha256}" in path:
        values["sha256"] = sha256_hex(photo)
        stored = await client.put(
            f"/api/v1/photos/{values['sha256']}",
            params={"household_id": str(household.id), "tag": "before"},
            content=photo,
            headers={**headers, "Content-Type": "image/jpeg"},
        )
        assert stored.status_code == 201, stored.text
    if "{upload_id}" in path:  # the caller's own (an API client may not upload: 403)
        created = await tus.create(client, auth, photo, household_id=household.id)
        if created.status_code == 201:
            values["upload_id"] = created.headers["Location"].rsplit("/", 1)[-1]
    fetched = await client.get(f"/api/v1/households/{household.id}", headers=headers)
    return Known(
        path={name: value for name, value in values.items() if f"{{{name}}}" in path},
        query={"region": VILLAGE_A1, "household_id": str(household.id)},
        headers={
            "If-Match": fetched.headers["ETag"],
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(photo)),
            "Upload-Offset": "0",
            "Upload-Metadata": tus.metadata(
                sha256=sha256_hex(photo), household_id=household.id, tag="before"
            ),
        },
        body={
            "household_id": str(household.id),
            "village_code": VILLAGE_A1,
            "region_code": COUNTY_A,
        },
    )


def _draw(strategy: st.SearchStrategy[Case], count: int, key: str) -> list[Case]:
    """`count` cases from `strategy` (Hypothesis used as a generator, seeded by `key`)."""
    cases: list[Case] = []

    @seed(BASE_SEED ^ zlib.crc32(key.encode()))
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def collect(case: Case) -> None:
        cases.append(case)

    with contextlib.suppress(Unsatisfiable):  # e.g. no invalid request without input
        collect()
    return cases


def _cases(method: str, path: str, role: str, auth: dict[str, str], known: Known) -> list[Case]:
    operation = SCHEMA[path][method]
    declared = {(p.location, p.name.lower()): p.name for p in operation.iter_parameters()}
    query = {n: v for n, v in known.query.items() if ("query", n.lower()) in declared}
    headers = {
        declared[("header", n.lower())]: v
        for n, v in known.headers.items()
        if ("header", n.lower()) in declared
    }
    key = f"{method} {path} {role}"
    kinds = [
        ("random", operation.as_strategy(GenerationMode.POSITIVE, headers=auth)),
        (
            "known",
            operation.as_strategy(
                GenerationMode.POSITIVE,
                headers={**headers, **auth},
                path_parameters=known.path or None,
                query=query or None,
            ),
        ),
        ("invalid", operation.as_strategy(GenerationMode.NEGATIVE, headers=auth)),
    ]
    cases = []
    for kind, strategy in kinds:
        for case in _draw(strategy, EXAMPLES, key + kind):
            if kind == "known" and isinstance(case.body, dict | list):
                case.body = _aim(case.body, known.body)
            cases.append(case)
    # The coverage phase: each parameter's and body field's boundary values, missing required
    # parts, wrong types (deterministic, no Hypothesis draw), on the known objects.
    generator = CoverageGenerator(
        operation=operation,
        generation_modes=list(GenerationMode),
        generation_config=SCHEMA.config.generation_for(operation=operation, phase="coverage"),
        auth_storage=None,
        override=Override(headers={**headers, **auth}, path_parameters=dict(known.path)),
        feedback=FeedbackSources(),
    )
    turn = list(ROLES).index(role)
    for index, case in enumerate(generator):
        if not COVERAGE_ALL and index % len(ROLES) != turn:
            continue
        positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
        if positive and isinstance(case.body, dict | list):
            case.body = _aim(case.body, known.body)
        cases.append(case)
    # The document's own examples, naming the known objects.
    for strategy in operation.get_strategies_from_examples():
        for case in _draw(strategy, 1, key + "example"):
            case.headers = {**(case.headers or {}), **headers, **auth}
            case.path_parameters = {**(case.path_parameters or {}), **known.path}
            if isinstance(case.body, dict | list):
                case.body = _aim(case.body, known.body)
            cases.append(case)
    return cases


async def _send(client: httpx.AsyncClient, case: Case) -> httpx.Response:
    """The case as the requests transport would send it, through the test's ASGI client."""
    prepared = requests.Request(**case.as_transport_kwargs(base_url="http://test")).prepare()
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert prepared.method is not None and prepared.url is not None
    return await client.request(
        prepared.method, prepared.url, headers=dict(prepared.headers), content=body
    )


async def _auth(role: str, session: AsyncSession, world: World) -> dict[str, str]:
    """The Authorization header of `role`."""
    if ROLES[role] is None:
        registered = await make_client(session, admin=world.users["admin_a"], region=COUNTY_A)
        return {"Authorization": f"Bearer {minted_token(registered)}"}
    return world.headers(ROLES[role])


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_operation_keeps_its_contract(
    method: str,
    path: str,
    role: str,
    client: httpx.AsyncClient,
    session: AsyncSession,
    world: World,
) -> None:
    auth = await _auth(role, session, world)
    known = await _known(session, client, world, path, auth)
    failures: dict[str, str] = {}
    for case in _cases(method, path, role, auth, known):
        savepoint = await session.begin_nested()
        try:
            response = await _send(client, case)
        finally:
            if savepoint.is_active:
                await savepoint.rollback()
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as failure:  # the checks that failed, with a curl to reproduce
            title = str(failure).strip().splitlines()[0]
            failures.setdefault(title, str(failure))
    assert not failures, "\n\n".join(failures.values())


@pytest.mark.parametrize("role", ROLES)
async def test_workflows_keep_the_contract(
    role: str, client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    """The stateful phase: sequences of calls that feed one answer's values (a household's id,
    a member's, a measure's…) into the next request, along the links schemathesis infers from
    the document. Each scenario runs in a savepoint rolled back at its end.

    Hypothesis drives the state machine synchronously, so it runs in a thread of its own and
    hands each request (and each savepoint) to the test's event loop.
    """
    auth = await _auth(role, session, world)
    loop = asyncio.get_running_loop()
    failures: dict[str, str] = {}
    sent: list[int] = []

    def run(awaitable: Any) -> Any:
        async def wait() -> Any:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wait(), loop).result()

    class Workflow(SCHEMA.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.savepoint = run(session.begin_nested())

        def teardown(self) -> None:
            if self.savepoint.is_active:
                run(self.savepoint.rollback())

        def call(self, case: Case, **kwargs: Any) -> Response:
            case.headers = {**(case.headers or {}), **auth}
            sent.append(1)
            return Response.from_httpx(run(_send(client, case)), verify=False)

        def validate_response(self, response: Response, case: Case, **kwargs: Any) -> None:
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as failure:
                title = str(failure).strip().splitlines()[0]
                failures.setdefault(title, str(failure))

    scenarios = settings(
        max_examples=max(EXAMPLES * 5, 10),
        stateful_step_count=8,
        deadline=None,
        database=None,
        derandomize=BASE_SEED == 0,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    runner = Workflow.run if BASE_SEED == 0 else seed(BASE_SEED)(Workflow.run)
    await asyncio.to_thread(runner, settings=scenarios)
    assert len(sent) >= 20, f"only {len(sent)} requests: the workflows did not get going"
    assert not failures, "\n\n".join(failures.values())
