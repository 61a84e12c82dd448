"""Safe evaluation of the small arithmetic expressions Accelergy/timeloopfe specs use.

Attribute values such as ``max(32, width)``, ``width * depth`` or
``max(1, ceil(log2(depth))) if depth >= 1 else 1`` are evaluated by walking the Python AST and
allowing only numbers, names bound in the given scope, arithmetic, comparisons, conditional
expressions and a handful of math functions. Nothing else is ever executed (no ``eval``).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Mapping
from typing import Any

FUNCTIONS = {
    "max": max, "min": min, "abs": abs, "round": round, "int": int, "float": float,
    "ceil": math.ceil, "floor": math.floor, "log2": math.log2, "log": math.log,
    "log10": math.log10, "sqrt": math.sqrt,
}
BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Not: operator.not_}
COMPARE = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


class ExpressionError(ValueError):
    """An expression uses something outside the allowed arithmetic subset, or an unknown name."""


def evaluate(text: str, scope: Mapping[str, Any]) -> Any:
    """Evaluate ``text`` with names looked up in ``scope``; raises ExpressionError if unsafe."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}: {exc.msg}") from None
    return _eval(tree.body, scope)


def _eval(node: ast.AST, scope: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in scope:
            return scope[node.id]
        raise ExpressionError(f"unknown name {node.id!r}")
    if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
        return BINARY[type(node.op)](_eval(node.left, scope), _eval(node.right, scope))
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
        return UNARY[type(node.op)](_eval(node.operand, scope))
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, scope) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, scope)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            if type(op) not in COMPARE:
                raise ExpressionError(f"operator {type(op).__name__} not allowed")
            right = _eval(comparator, scope)
            if not COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.IfExp):
        return _eval(node.body if _eval(node.test, scope) else node.orelse, scope)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        func = FUNCTIONS.get(node.func.id)
        if func is None:
            raise ExpressionError(f"function {node.func.id!r} not allowed")
        return func(*(_eval(a, scope) for a in node.args))
    raise ExpressionError(f"{type(node).__name__} not allowed in expressions")


def resolve(value: Any, scope: Mapping[str, Any]) -> Any:
    """Resolve an attribute value: strings that parse as allowed expressions are evaluated,
    other strings (``"LPDDR4"``, ``"32nm"``) are kept as they are."""
    if not isinstance(value, str):
        return value
    try:
        return evaluate(value, scope)
    except (ExpressionError, ArithmeticError, TypeError, ValueError):
        return value
