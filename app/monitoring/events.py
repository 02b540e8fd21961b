"""What the monitoring procedure publishes."""

from __future__ import annotations

from dataclasses import dataclass

from app.households.models import Household
from app.monitoring.models import MonitoringCase


@dataclass(frozen=True)
class CaseIdentified:
    """The county approved a case: it is a monitoring object (status `identified`)."""

    case: MonitoringCase
    household: Household


@dataclass(frozen=True)
class CaseCleared:
    """The county approved the clearing of a case's risk (status `cleared`)."""

    case: MonitoringCase
    household: Household
