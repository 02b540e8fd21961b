"""Request validation errors for people: pydantic's error types as translatable Texts.

Pydantic writes its messages in English only. For the common error types this table gives a
template over the error's `ctx`; in English the response keeps pydantic's own message, in other
languages the template is translated. A validator that raises `ValueError(Text(...))` has its
Text used. Other types keep pydantic's English message in every language.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.core.i18n import N_, Text

MESSAGES: Mapping[str, str] = {
    "missing": N_("Field required"),
    "extra_forbidden": N_("Extra inputs are not permitted"),
    "string_type": N_("Input should be a valid string"),
    "string_too_short": N_("String should have at least {min_length} characters"),
    "string_too_long": N_("String should have at most {max_length} characters"),
    "string_pattern_mismatch": N_("String should match pattern '{pattern}'"),
    "int_type": N_("Input should be a valid integer"),
    "int_parsing": N_("Input should be a valid integer, unable to parse string as an integer"),
    "int_from_float": N_("Input should be a valid integer, got a number with a fractional part"),
    "float_type": N_("Input should be a valid number"),
    "float_parsing": N_("Input should be a valid number, unable to parse string as a number"),
    "bool_type": N_("Input should be a valid boolean"),
    "bool_parsing": N_("Input should be a valid boolean, unable to interpret input"),
    "greater_than": N_("Input should be greater than {gt}"),
    "greater_than_equal": N_("Input should be greater than or equal to {ge}"),
    "less_than": N_("Input should be less than {lt}"),
    "less_than_equal": N_("Input should be less than or equal to {le}"),
    "decimal_type": N_("Decimal input should be an integer, float, string or Decimal object"),
    "decimal_parsing": N_("Input should be a valid decimal"),
    "decimal_max_places": N_(
        "Decimal input should have no more than {decimal_places} decimal places"
    ),
    "decimal_max_digits": N_("Decimal input should have no more than {max_digits} digits in total"),
    "enum": N_("Input should be {expected}"),
    "literal_error": N_("Input should be {expected}"),
    "uuid_type": N_("UUID input should be a string, bytes or UUID object"),
    "uuid_parsing": N_("Input should be a valid UUID"),
    "date_type": N_("Input should be a valid date"),
    "date_parsing": N_("Input should be a valid date in the format YYYY-MM-DD"),
    "date_from_datetime_parsing": N_("Input should be a valid date or datetime"),
    "datetime_type": N_("Input should be a valid datetime"),
    "datetime_parsing": N_("Input should be a valid datetime"),
    "datetime_from_date_parsing": N_("Input should be a valid datetime or date"),
    "timezone_aware": N_("Input should have timezone info"),
    "list_type": N_("Input should be a valid list"),
    "too_short": N_("List should have at least {min_length} items"),
    "too_long": N_("List should have at most {max_length} items"),
    "dict_type": N_("Input should be a valid dictionary"),
    "model_type": N_("Input should be a valid dictionary or object"),
    "model_attributes_type": N_("Input should be a valid dictionary or object"),
    "url_parsing": N_("Input should be a valid URL"),
    "url_type": N_("URL input should be a string or URL"),
    "url_scheme": N_("URL scheme should be {expected_schemes}"),
    "json_invalid": N_("Invalid JSON: {error}"),
}


def validation_text(err: Mapping[str, Any]) -> Text | None:
    """The Text of one pydantic error (`ValidationError.errors()` item), if one is known."""
    kind = err.get("type")
    ctx = err.get("ctx") or {}
    if kind in ("value_error", "assertion_error"):
        error = ctx.get("error")
        if isinstance(error, Exception) and error.args and isinstance(error.args[0], Text):
            return error.args[0]
        return None
    template = MESSAGES.get(str(kind))
    if template is None:
        return None
    try:
        template.format(**ctx)
    except (KeyError, IndexError, ValueError):
        return None  # a ctx without the values the template names: keep pydantic's message
    return Text(template, **ctx)
