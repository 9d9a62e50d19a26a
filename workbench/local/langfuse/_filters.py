"""The structured `filter` query parameter (a JSON list of conditions) as SQL.

Each condition is `{"type", "column", "operator", "value", "key"?}` as documented for
`GET /api/public/v2/observations`; columns map to SQL expressions given by the caller.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ._errors import BadRequest
from ._time import parse_iso, time_problem


@dataclass(frozen=True)
class Column:
    sql: str
    kind: str = "string"
    """string | number | datetime | boolean | array | object"""


_COMPARE = {"=": "=", ">": ">", "<": "<", ">=": ">=", "<=": "<=", "<>": "<>"}


def _like(text: Any) -> str:
    escaped = str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped


def _string_condition(expr: str, operator: str, value: Any, where: str) -> tuple[str, list[Any]]:
    if operator == "=":
        return f"{expr} = ?", [value]
    if operator == "<>":
        return f"({expr} IS NULL OR {expr} <> ?)", [value]
    if operator in ("contains", "matches"):
        return f"{expr} LIKE ? ESCAPE '\\'", [f"%{_like(value)}%"]
    if operator == "does not contain":
        return f"({expr} IS NULL OR {expr} NOT LIKE ? ESCAPE '\\')", [f"%{_like(value)}%"]
    if operator == "starts with":
        return f"{expr} LIKE ? ESCAPE '\\'", [f"{_like(value)}%"]
    if operator == "ends with":
        return f"{expr} LIKE ? ESCAPE '\\'", [f"%{_like(value)}"]
    raise BadRequest(f"{where}: operator '{operator}' is not a string operator.")


def _options(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise BadRequest(f"{where}: 'value' must be a non-empty list for an options filter.")
    return value


def condition(spec: Any, columns: dict[str, Column], index: int) -> tuple[str, list[Any]]:
    where = f"filter[{index}]"
    if not isinstance(spec, dict):
        raise BadRequest(f"{where} must be an object with type, column, operator and value.")
    column_name = spec.get("column")
    column = columns.get(column_name) if isinstance(column_name, str) else None
    if column is None:
        raise BadRequest(
            f"{where}: column '{column_name}' is not filterable here. Use one of: "
            f"{', '.join(sorted(columns))}."
        )
    kind = spec.get("type")
    operator = str(spec.get("operator", "")).lower()
    value = spec.get("value")
    expr = column.sql
    if kind in ("stringObject", "numberObject", "booleanObject"):
        key = spec.get("key")
        if column.kind != "object" or not isinstance(key, str) or not key:
            raise BadRequest(f"{where}: a {kind} filter needs an object column and a 'key'.")
        path = ('$."' + key.replace('"', '\\"') + '"').replace("'", "''")
        return condition(
            {"type": kind[: -len("Object")], "column": "_", "operator": operator, "value": value},
            {"_": Column(f"json_extract({expr}, '{path}')")},
            index,
        )
    if kind == "null":
        if operator == "is null":
            return f"{expr} IS NULL", []
        if operator == "is not null":
            return f"{expr} IS NOT NULL", []
        raise BadRequest(f"{where}: a null filter takes 'is null' or 'is not null'.")
    if kind in ("stringOptions", "categoryOptions"):
        values = _options(value, where)
        marks = ",".join("?" * len(values))
        if operator == "any of":
            return f"{expr} IN ({marks})", values
        if operator == "none of":
            return f"({expr} IS NULL OR {expr} NOT IN ({marks}))", values
        raise BadRequest(f"{where}: an options filter takes 'any of' or 'none of'.")
    if kind == "arrayOptions":
        if column.kind != "array":
            raise BadRequest(f"{where}: column '{column_name}' is not a list.")
        values = _options(value, where)
        marks = ",".join("?" * len(values))
        member = f"SELECT 1 FROM json_each({expr}) WHERE json_each.value IN ({marks})"
        if operator == "any of":
            return f"EXISTS ({member})", values
        if operator == "none of":
            return f"NOT EXISTS ({member})", values
        if operator == "all of":
            count = f"SELECT COUNT(DISTINCT json_each.value) FROM json_each({expr}) "
            return f"({count}WHERE json_each.value IN ({marks})) = ?", [*values, len(set(values))]
        raise BadRequest(f"{where}: an arrayOptions filter takes 'any of', 'none of' or 'all of'.")
    if kind == "datetime":
        if operator not in (">", "<", ">=", "<="):
            raise BadRequest(f"{where}: a datetime filter takes >, <, >= or <=.")
        try:
            moment = parse_iso(str(value))
        except ValueError as e:
            raise BadRequest(f"{where}: {time_problem(value, e)}.") from None
        return f"{expr} {operator} ?", [moment]
    if kind == "number":
        if (
            operator not in _COMPARE
            or isinstance(value, bool)
            or not isinstance(value, int | float)
        ):
            raise BadRequest(f"{where}: a number filter takes =, >, <, >=, <= and a number.")
        return f"{expr} {_COMPARE[operator]} ?", [value]
    if kind == "boolean":
        if operator not in ("=", "<>") or not isinstance(value, bool):
            raise BadRequest(f"{where}: a boolean filter takes = or <> and true or false.")
        return f"{expr} {operator} ?", [1 if value else 0]
    if kind == "string":
        return _string_condition(expr, operator, value, where)
    raise BadRequest(
        f"{where}: type '{kind}' is not supported. Use datetime, string, number, stringOptions, "
        "categoryOptions, arrayOptions, stringObject, numberObject, boolean or null."
    )


def parse(raw: str, columns: dict[str, Column]) -> tuple[list[str], list[Any]]:
    """SQL conditions (to be ANDed) and their parameters for a `filter` query parameter."""
    try:
        specs = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"Query parameter 'filter' is not valid JSON ({exc}).") from exc
    if not isinstance(specs, list):
        raise BadRequest("Query parameter 'filter' must be a JSON list of filter conditions.")
    clauses: list[str] = []
    params: list[Any] = []
    for index, spec in enumerate(specs):
        sql, values = condition(spec, columns, index)
        clauses.append(sql)
        params.extend(values)
    return clauses, params
