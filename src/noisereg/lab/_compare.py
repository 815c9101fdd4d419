"""The one table of comparisons that claims and speed targets state: ``value <op> threshold``."""

from __future__ import annotations

import operator
from collections.abc import Callable

OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}


def check_op(op: str) -> str:
    """``op`` if it is one of :data:`OPS`, else a ValueError naming the allowed ones."""
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}; got {op!r}")
    return op


def goal(op: str, threshold: float) -> str:
    """How a goal reads in a table: ``"<= 1.5"``."""
    return f"{op} {threshold:g}"
