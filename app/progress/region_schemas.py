"""The standing of a village, town or county: what GET /regions/{code}/progress answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.money import MoneyStr
from app.households.vocabulary import Attribute, Status
from app.monitoring.vocabulary import (
    CaseCategory,
    CaseStatus,
    ClearingMethod,
    Origin,
    RiskType,
)
from app.records.vocabulary import MeasureStatus


class MeasureFigures(BaseModel):
    total: int = Field(description="Support measures (帮扶措施) of the counted households")
    by_status: dict[MeasureStatus, int] = Field(description="Every status, zeros included")
    funds_planned: MoneyStr = Field(description="Yuan: sum of `funds` over all the measures")
    funds_spent: MoneyStr = Field(description="Yuan: sum of `funds_spent` over all the measures")


class VisitCoverage(BaseModel):
    visited_30d: float | None = Field(
        description="Share (0…1) of the counted households visited in the last 30 days; "
        "null without households"
    )
    visited_90d: float | None = Field(description="The same for the last 90 days")
    households_visited_30d: int
    households_visited_90d: int


class RiskFlagCounts(BaseModel):
    """Households with each monitoring flag (防返贫监测); a household may have several."""

    income_drop: int = Field(
        description="Per-capita income fell by more than the configured share (30%) between "
        "the two latest snapshots"
    )
    below_monitoring_threshold: int = Field(
        description="Lifted, and the latest per-capita income is below that year's monitoring "
        "threshold"
    )
    indicator_lost: int = Field(
        description="An indicator once assessed `ok` is now `not_ok` (latest assessment)"
    )
    measure_overdue: int = Field(
        description="A measure past its due date, neither done nor cancelled"
    )
    visit_overdue: int = Field(
        description="Never visited, or not within the visit cadence (30 days)"
    )
    photos_missing: int = Field(description="A record references a photo the server lacks")


class MonitoringFigures(BaseModel):
    """防返贫监测: the monitoring cases of the counted households, and their alerts."""

    open_cases: int = Field(description="Cases neither cleared nor rejected")
    cases_by_category: dict[CaseCategory, int] = Field(
        description="Open cases by category, zeros included"
    )
    cases_by_status: dict[CaseStatus, int] = Field(
        description="All cases (closed ones too) by status, zeros included"
    )
    cases_by_risk_type: dict[RiskType, int] = Field(
        description="Open cases with each risk type, zeros included (a case has up to five)"
    )
    identified_this_year: int = Field(
        description="Cases identified (county approval) in the calendar year of `as_of`, "
        "whatever their status now"
    )
    cleared_this_year: dict[ClearingMethod, int] = Field(
        description="Cases cleared in the calendar year of `as_of`, by clearing method"
    )
    open_alerts: int = Field(description="Department alerts matched here, not yet verified")
    under_guarantees: int = Field(
        description="Open identified cases (identified, or in a clearing review) whose "
        "household has no member aged 16–64 able to work (`no_labour`): covered by guarantees "
        "(兜底), never cleared"
    )
    clearable: int = Field(
        description="Open identified cases for which the clearing rule holds no reason today"
    )


class RegionFigures(BaseModel):
    """Figures over the households of a region the caller may see; `removed` ones never count."""

    households_total: int = Field(
        description="Households whose status is not `removed` (ordinary households included)"
    )
    households_by_origin: dict[Origin, int] = Field(
        description="Registered (建档立卡) and ordinary (一般农户) households, zeros included"
    )
    households_by_status: dict[Status, int] = Field(
        description="Every status, zeros included (`removed` households are not counted: 0); "
        "ordinary households have no status"
    )
    households_by_attribute: dict[Attribute, int] = Field(
        description="Every household attribute (贫困户属性), zeros included"
    )
    people_in_poverty: int = Field(
        description="Current members of households that are `new`, `in_poverty` or `returned`"
    )
    rural_population: int | None = Field(
        description="Registered rural population (户籍农业人口): sum over the region's villages "
        "that state it; null if none does"
    )
    poverty_incidence: float | None = Field(
        description="贫困发生率: people_in_poverty ÷ rural_population (a fraction); null when "
        "the population is unknown or 0"
    )
    incidence_threshold: float = Field(
        description="Incidence below which a village may exit (2%, 3% in the western provinces)"
    )
    below_threshold: bool | None = Field(description="poverty_incidence < incidence_threshold")
    exit_eligible: int = Field(
        description="Households still poor (`new`, `in_poverty`, `returned`) that meet the "
        "household exit rule: the latest per-capita income above that year's poverty line, the "
        "two latest years' annual snapshots above their lines, the latest assessment of each of "
        "the six indicators (两不愁三保障 and drinking water) `ok`, every member aged 6–15 in "
        "school and every member in basic medical insurance"
    )
    households_with_income: int = Field(description="Households with at least one income snapshot")
    income_change_avg: MoneyStr | None = Field(
        description="Yuan: average over households_with_income of latest minus baseline "
        "per-capita income; null when none has a snapshot"
    )
    measures: MeasureFigures
    visit_coverage: VisitCoverage
    risk_flags: RiskFlagCounts
    monitoring: MonitoringFigures


class RegionIdentity(BaseModel):
    code: str
    name: str | None = Field(description="Null if the division is not registered")
    level: int = Field(description="3 county, 4 town, 5 village")
    level_name: str


class RegionProgressChild(RegionFigures, RegionIdentity):
    """A child region's figures: a town of a county, a village of a town (code, name first)."""


_FIGURES_EXAMPLE: dict[str, Any] = {
    "households_total": 212,
    "households_by_origin": {"registered": 212, "ordinary": 0},
    "households_by_status": {
        "new": 3,
        "in_poverty": 17,
        "lifted": 150,
        "lifted_no_support": 38,
        "returned": 4,
        "removed": 0,
    },
    "households_by_attribute": {"general": 160, "dibao": 40, "tekun": 9, "dibao_tekun": 3},
    "people_in_poverty": 61,
    "rural_population": 3000,
    "poverty_incidence": 0.020333333333333332,
    "incidence_threshold": 0.02,
    "below_threshold": False,
    "exit_eligible": 9,
    "households_with_income": 205,
    "income_change_avg": "2184.37",
    "measures": {
        "total": 480,
        "by_status": {
            "planned": 20,
            "not_started": 12,
            "in_progress": 70,
            "done": 370,
            "cancelled": 8,
        },
        "funds_planned": "1520000.00",
        "funds_spent": "1187450.50",
    },
    "visit_coverage": {
        "visited_30d": 0.75,
        "visited_90d": 0.9764150943396226,
        "households_visited_30d": 159,
        "households_visited_90d": 207,
    },
    "risk_flags": {
        "income_drop": 6,
        "below_monitoring_threshold": 11,
        "indicator_lost": 2,
        "measure_overdue": 14,
        "visit_overdue": 53,
        "photos_missing": 5,
    },
    "monitoring": {
        "open_cases": 7,
        "cases_by_category": {"unstable_lifted": 4, "marginal": 2, "sudden_hardship": 1},
        "cases_by_status": {
            "proposed": 1,
            "village_reviewed": 0,
            "town_reviewed": 1,
            "identified": 4,
            "clearing_village_reviewed": 1,
            "clearing_town_reviewed": 0,
            "cleared": 3,
            "rejected": 1,
        },
        "cases_by_risk_type": {
            "illness": 4,
            "disability": 1,
            "schooling": 1,
            "disaster": 0,
            "accident": 0,
            "industry_failure": 1,
            "unstable_employment": 2,
            "lack_labour": 1,
            "high_rigid_expenses": 2,
            "other": 0,
        },
        "identified_this_year": 5,
        "cleared_this_year": {"assisted": 2, "natural": 1},
        "open_alerts": 3,
        "under_guarantees": 1,
        "clearable": 1,
    },
}


class RegionProgress(RegionProgressChild):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "371522101000",
                    "name": "燕店镇",
                    "level": 4,
                    "level_name": "town",
                    **_FIGURES_EXAMPLE,
                    "as_of": "2026-11-23T08:00:00Z",
                    "children": [
                        {
                            "code": "371522101201",
                            "name": "王庄村",
                            "level": 5,
                            "level_name": "village",
                            **_FIGURES_EXAMPLE,
                        }
                    ],
                }
            ]
        }
    )

    as_of: datetime = Field(description="The moment the figures were computed for (visit windows)")
    children: list[RegionProgressChild] = Field(
        description="A county: one entry per town; a town: one per village; a village: none"
    )
