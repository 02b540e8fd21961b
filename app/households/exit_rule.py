"""The exit rule as the households service needs it (a port: the rule reads records, progress
and thresholds, which read households)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core.i18n import Text
from app.core.ports import Port

# (session, caller, household id) → the reasons the exit rule does not hold, as (code,
# detail); none when it holds.
ExitReasons = Callable[[AsyncSession, Principal, uuid.UUID], Awaitable[list[tuple[str, Text]]]]

exit_reasons: Port[ExitReasons] = Port("exit rule")
