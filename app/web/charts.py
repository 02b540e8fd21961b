"""ECharts options, built on the server from the API's figures; `static/app.js` draws them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

PALETTE = ["#c62828", "#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#9e9d24", "#5d4037"]


def _base(title: str) -> dict[str, Any]:
    return {
        "title": {"text": title, "left": "center", "textStyle": {"fontSize": 14}},
        "color": PALETTE,
        "tooltip": {"trigger": "item"},
        "animation": False,
    }


def pie(title: str, counts: dict[str, int], label: Callable[[str], str]) -> dict[str, Any]:
    option = _base(title)
    option["legend"] = {"bottom": 0, "type": "scroll"}
    option["series"] = [
        {
            "type": "pie",
            "radius": ["35%", "65%"],
            "data": [{"name": label(k), "value": v} for k, v in counts.items() if v],
            "label": {"formatter": "{b}\n{c}"},
        }
    ]
    return option


def bars(
    title: str,
    categories: Sequence[str],
    series: dict[str, Sequence[float | int | None]],
    *,
    percent: bool = False,
    line: tuple[str, float] | None = None,
    horizontal: bool = False,
) -> dict[str, Any]:
    """Grouped bars; `line` draws a named reference value (an exit threshold) across them."""
    option = _base(title)
    option["tooltip"] = {"trigger": "axis"}
    option["legend"] = {"bottom": 0}
    option["grid"] = {"left": 60, "right": 30, "top": 40, "bottom": 60, "containLabel": True}
    category_axis = {"type": "category", "data": list(categories), "axisLabel": {"interval": 0}}
    value_axis: dict[str, Any] = {"type": "value"}
    if percent:
        value_axis["axisLabel"] = {"formatter": "{value}%"}
    option["xAxis"], option["yAxis"] = (
        (value_axis, category_axis) if horizontal else (category_axis, value_axis)
    )
    option["series"] = []
    for name, values in series.items():
        data = [round(v * 100, 2) if percent and v is not None else v for v in values]
        option["series"].append({"type": "bar", "name": name, "data": data})
    if line is not None and option["series"]:
        name, value = line
        shown = round(value * 100, 2) if percent else value
        # The reference line stays in view even when every bar is far below it.
        peak = max((v for v in option["series"][0]["data"] if v is not None), default=0)
        value_axis["max"] = round(max(peak, shown) * 1.25, 2) or None
        option["series"][0]["markLine"] = {
            "symbol": "none",
            "lineStyle": {"type": "dashed", "color": "#c62828"},
            "label": {"formatter": f"{name} {shown}{'%' if percent else ''}"},
            "data": [{"xAxis" if horizontal else "yAxis": shown}],
        }
    return option


def income(
    years: Sequence[int],
    per_capita: Sequence[float | None],
    poverty_line: Sequence[float | None],
    monitoring_threshold: Sequence[float | None],
) -> dict[str, Any]:
    """Per-capita income by year against the line of its time: the poverty line up to 2020,
    the monitoring threshold after."""
    option = _base("人均纯收入（元/年）")
    option["tooltip"] = {"trigger": "axis"}
    option["legend"] = {"bottom": 0}
    option["grid"] = {"left": 60, "right": 30, "top": 40, "bottom": 50, "containLabel": True}
    option["xAxis"] = {"type": "category", "data": [str(y) for y in years]}
    option["yAxis"] = {"type": "value"}
    option["series"] = [
        {
            "type": "line",
            "name": "人均纯收入",
            "data": list(per_capita),
            "connectNulls": True,
            "label": {"show": True},
            "lineStyle": {"width": 3},
        },
        {
            "type": "line",
            "name": "贫困线",
            "data": list(poverty_line),
            "step": "middle",
            "lineStyle": {"type": "dashed"},
            "symbol": "none",
        },
        {
            "type": "line",
            "name": "监测线",
            "data": list(monitoring_threshold),
            "step": "middle",
            "lineStyle": {"type": "dotted"},
            "symbol": "none",
        },
    ]
    return option
