"""Issue 14, acceptance 1: one case end to end through the API, the clock moving with it.

An ordinary household (一般农户) of village A1 is matched by a medical-insurance alert; the
officer's phone sends a visit and a `marginal` case in one sync batch; the village, the town and
the county identify it; a measure and income snapshots follow over the months, and the clearing
is refused with reasons that change as time and data move, until it is cleared `assisted`. The
case keeps every step. The clock is frozen with time-machine (every `now` of the server moves),
and each stage logs in again, as a phone would after a while.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import time_machine
from sqlalchemy.ext.asyncio import AsyncSession

from tests.builders import VILLAGE_A1, World, make_id_number, token_for

API = "/api/v1"
HEAD_ID = make_id_number(701, "19841012")  # 41 in 2026: working age
CHILD_ID = make_id_number(702, "20150903")  # 10 in 2026: school age
ALL_OK = dict.fromkeys(("food", "clothing", "education", "medical", "housing", "water"), "ok")
CLEARANCE = ("clearance_village_review", "clearance_town_review", "clearance_county_approval")


def _moment(day: str, hour: int = 4) -> datetime:
    """A working hour in China (UTC+8) on `day`, in UTC."""
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def _login_again(session: AsyncSession, world: World) -> None:
    """Fresh tokens issued at the frozen time (the fixture's would be from the real today)."""
    for name, user in world.users.items():
        world.tokens[name] = await token_for(session, user)


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


async def _step(
    client: httpx.AsyncClient, world: World, case_id: str, who: str, step: str, **extra: Any
) -> httpx.Response:
    return await client.post(
        f"{API}/monitoring-cases/{case_id}/steps",
        json={"step": step, "decision": "approve", **extra},
        headers=world.headers(who),
    )


async def _blocked(client: httpx.AsyncClient, world: World, case_id: str) -> set[str]:
    """Try the first clearance step; the reasons it is refused for (nothing is written)."""
    response = await _step(
        client, world, case_id, "officer_a1", "clearance_village_review", method="assisted"
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "clearing_blocked"
    assert response.headers["content-type"] == "application/problem+json"
    return {reason["code"] for reason in problem["reasons"]}


async def _progress_reasons(client: httpx.AsyncClient, world: World, household_id: str) -> set[str]:
    body = await _ok(
        await client.get(
            f"{API}/households/{household_id}/progress", headers=world.headers("town_a1")
        )
    )
    clearing = body["monitoring"]["clearing"]
    assert clearing["eligible"] is (not clearing["reasons"])
    return {reason["code"] for reason in clearing["reasons"]}


async def _snapshot(
    client: httpx.AsyncClient,
    world: World,
    household_id: str,
    recorded: str,
    *,
    wage: str,
    medical: str = "0",
) -> dict[str, Any]:
    body = {
        "revision": 1,
        "household_id": household_id,
        "year": int(recorded[:4]),
        "kind": "monitoring",
        "household_size": 2,
        "recorded_at": f"{recorded}T10:00:00+08:00",
        "wage_income": wage,
        "business_income": "1200.00",
        "medical_out_of_pocket": medical,
    }
    response = await client.put(
        f"{API}/income-snapshots/{uuid.uuid4()}", json=body, headers=world.headers("officer_a1")
    )
    return dict(await _ok(response, 201))


async def test_a_case_from_alert_to_cleared_risk(
    client: httpx.AsyncClient, session: AsyncSession, world: World
) -> None:
    admin, officer = world.headers("admin_a"), world.headers("officer_a1")
    with time_machine.travel(_moment("2026-01-10"), tick=False):
        await _login_again(session, world)
        admin, officer = world.headers("admin_a"), world.headers("officer_a1")

        # An ordinary farm household, recorded by the county like any other.
        created = await _ok(
            await client.post(
                f"{API}/households",
                json={
                    "origin": "ordinary",
                    "number": "3715221012019001",
                    "village_code": VILLAGE_A1,
                    "head_name": "孙立平",
                    "phone": "13605350001",
                },
                headers=admin,
            ),
            201,
        )
        household_id = created["id"]
        assert created["origin"] == "ordinary" and created["status"] is None
        for member in (
            {
                "name": "孙立平",
                "id_number": HEAD_ID,
                "relation": "head",
                "labour": "normal",
                "medical_insurance": True,
            },
            {
                "name": "孙小雨",
                "id_number": CHILD_ID,
                "relation": "child",
                "labour": "none",
                "in_school": True,
                "medical_insurance": True,
            },
        ):
            current = await client.get(f"{API}/households/{household_id}", headers=admin)
            await _ok(
                await client.post(
                    f"{API}/households/{household_id}/members",
                    json=member,
                    headers={**admin, "If-Match": current.headers["etag"]},
                ),
                201,
            )

        # The medical insurance bureau's list matches the head by ID number.
        alert_file = (
            "department,id_number,kind,amount,occurred_on,note\r\n"
            f"medical_insurance,{HEAD_ID},large_medical_expense,42000.00,2025-12-28,住院自付\r\n"
            f"medical_insurance,{make_id_number(799, '19700101')},large_medical_expense,"
            "9000,2025-12-28,\r\n"
        ).encode()
        report = await _ok(
            await client.post(
                f"{API}/monitoring/alerts/import",
                files={"file": ("医保大额支出.csv", alert_file, "text/csv")},
                headers=admin,
            )
        )
        assert (report["matched"], report["unmatched"], report["duplicate"]) == (1, 1, 0)
        alerts = await _ok(
            await client.get(
                f"{API}/monitoring/alerts",
                params={"region": VILLAGE_A1, "status": "open"},
                headers=officer,
            )
        )
        [alert] = [a for a in alerts["items"] if a["household_id"] == household_id]
        assert (alert["department"], alert["kind"]) == (
            "medical_insurance",
            "large_medical_expense",
        )

        # The officer visits, finds the risk, and the phone sends both in one batch.
        case_id, visit_id = str(uuid.uuid4()), str(uuid.uuid4())
        batch = await _ok(
            await client.post(
                f"{API}/sync/batches",
                json={
                    "batch_id": str(uuid.uuid4()),
                    "device_id": "android-e2e",
                    "records": [
                        {
                            "type": "visit",
                            "id": visit_id,
                            "revision": 1,
                            "data": {
                                "household_id": household_id,
                                "visited_at": "2026-01-10T09:00:00+08:00",
                                "mode": "in_home",
                                "findings": "户主住院, 医保报销后自付较多",
                            },
                        },
                        {
                            "type": "monitoring_case",
                            "id": case_id,
                            "revision": 1,
                            "data": {
                                "household_id": household_id,
                                "category": "marginal",
                                "risk_types": ["illness", "high_rigid_expenses"],
                                "found_via": "department_alert",
                                "alert_id": alert["id"],
                                "found_on": "2026-01-10",
                                "description": "医保部门预警, 入户核实属实",
                            },
                        },
                    ],
                },
                headers=officer,
            )
        )
        assert [r["status"] for r in batch["results"]] == ["created", "created"], batch
        await _ok(
            await client.post(
                f"{API}/monitoring/alerts/{alert['id']}/verify",
                json={"outcome": "case_opened", "case_id": case_id, "note": "已纳入监测"},
                headers=officer,
            )
        )

        # Identification: village meeting, town check, county approval, in that order only.
        early = await _step(client, world, case_id, "admin_a", "county_approval")
        assert early.status_code == 409 and early.json()["code"] == "step_out_of_order"
        wrong_role = await _step(client, world, case_id, "town_a1", "village_review")
        assert wrong_role.status_code == 403
        for who, step in (
            ("officer_a1", "village_review"),
            ("town_a1", "town_review"),
            ("admin_a", "county_approval"),
        ):
            case = await _ok(await _step(client, world, case_id, who, step), 201)
        assert case["status"] == "identified" and case["identified_on"] == "2026-01-10"

        # Just identified: nothing has been done yet.
        assert await _blocked(client, world, case_id) == {
            "too_soon",
            "income_below_threshold",
            "income_not_stable",
            "guarantee_not_secured",  # the visit assessed nothing
            "no_measure",
        }

    with time_machine.travel(_moment("2026-02-01"), tick=False):
        await _login_again(session, world)
        officer = world.headers("officer_a1")
        # Help: a public-welfare job; a visit that finds every guarantee in place; the first
        # accounting, with the hospital bill still weighing on the year.
        await _ok(
            await client.put(
                f"{API}/measures/{uuid.uuid4()}",
                json={
                    "revision": 1,
                    "household_id": household_id,
                    "category": "public_welfare_job",
                    "title": "安排村级公益岗位",
                    "start_date": "2026-01-20",
                    "status": "in_progress",
                    "progress_pct": 40,
                },
                headers=officer,
            ),
            201,
        )
        await _ok(
            await client.put(
                f"{API}/visits/{uuid.uuid4()}",
                json={
                    "revision": 1,
                    "household_id": household_id,
                    "visited_at": "2026-01-30T10:00:00+08:00",
                    "mode": "in_home",
                    "checks": ALL_OK,
                },
                headers=officer,
            ),
            201,
        )
        first = await _snapshot(
            client, world, household_id, "2026-01-25", wage="16000", medical="12000"
        )
        assert first["above_monitoring_threshold"] is True
        assert first["poverty_line"] is None and first["above_poverty_line"] is None
        assert await _blocked(client, world, case_id) == {
            "too_soon",
            "income_not_stable",
            "rigid_expenses_unresolved",
        }
        assert await _progress_reasons(client, world, household_id) == {
            "too_soon",
            "income_not_stable",
            "rigid_expenses_unresolved",
        }

    with time_machine.travel(_moment("2026-07-20"), tick=False):
        await _login_again(session, world)
        # 191 days after identification; the second accounting, the bill reimbursed. Only 176
        # days between the two snapshots: not yet stable.
        await _snapshot(client, world, household_id, "2026-07-20", wage="17000")
        assert await _blocked(client, world, case_id) == {"income_not_stable"}

    with time_machine.travel(_moment("2026-08-10"), tick=False):
        await _login_again(session, world)
        await _snapshot(client, world, household_id, "2026-07-28", wage="17500")
        assert await _progress_reasons(client, world, household_id) == set()
        # Cleared by the same three levels, with the help that did it.
        for who, step in zip(("secretary_a1", "town_a1", "admin_a"), CLEARANCE, strict=True):
            extra = {"method": "assisted"} if step == "clearance_village_review" else {}
            case = await _ok(await _step(client, world, case_id, who, step, **extra), 201)

        assert case["status"] == "cleared"
        assert (case["cleared_on"], case["clearing_method"]) == ("2026-08-10", "assisted")
        # The history holds every step: who, in which role, when, what was decided.
        assert [(s["step"], s["actor_role"], s["decision"]) for s in case["steps"]] == [
            ("village_review", "officer", "approve"),
            ("town_review", "town_staff", "approve"),
            ("county_approval", "county_admin", "approve"),
            ("clearance_village_review", "first_secretary", "approve"),
            ("clearance_town_review", "town_staff", "approve"),
            ("clearance_county_approval", "county_admin", "approve"),
        ]
        assert [s["actor_id"] for s in case["steps"]] == [
            str(world.users[who].id)
            for who in ("officer_a1", "town_a1", "admin_a", "secretary_a1", "town_a1", "admin_a")
        ]
        assert [date.fromisoformat(s["taken_at"][:10]) for s in case["steps"]] == [
            date(2026, 1, 10)
        ] * 3 + [date(2026, 8, 10)] * 3

        # The household may be watched again: a new case is allowed, the old one stays.
        listed = await _ok(
            await client.get(
                f"{API}/households/{household_id}/monitoring-cases",
                headers=world.headers("admin_a"),
            )
        )
        assert [c["id"] for c in listed["items"]] == [case_id]
        progress = await _ok(
            await client.get(
                f"{API}/households/{household_id}/progress", headers=world.headers("admin_a")
            )
        )
        assert progress["monitoring"]["case"] is None
        assert progress["monitoring"]["open_alerts"] == []
