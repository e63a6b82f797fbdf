"""The baseline's condition language: a small, safe subset of Python expressions.

A condition is parsed once with :mod:`ast` and compiled to nested closures (no ``eval``):
only the nodes below are accepted, anything else is refused with the reason.

- literals: numbers, strings, ``true`` / ``false`` (``True`` / ``False`` too), lists ``[...]``
- field names: the reported fields (security and inventory catalogue) and the collector's
  derived ones (``os_supported`` ...), checked against the names the caller allows
- comparisons ``== != < <= > >=``, ``in`` / ``not in``, chained (``0 < lock_s <= 900``)
- ``and``, ``or``, ``not``
- functions: ``age_days(field)`` (days from an epoch-seconds field to the evaluation time),
  ``len(field)``, ``lower(field)``

Three-valued logic: a field the device did not report makes the comparison *unknown*
(:class:`Unknown`, naming the field); ``and`` / ``or`` follow Kleene's rules, so
``rdp_on == false or rdp_nla == true`` passes on a PC with RDP off even when NLA was not
reported, and fails only when every alternative is known to fail.
"""
import ast
import operator
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple

#: A compiled condition: env -> value; raises :class:`Unknown`.
Compiled = Callable[[Mapping[str, Any]], Any]

#: The name under which the evaluation time (epoch s) is in the environment.
NOW = "__now__"


class Unknown(Exception):
    """A field the condition needs is absent; ``field`` names the first one."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


class ConditionError(ValueError):
    """A condition that is not in the language, or names an unknown field."""


class Condition(NamedTuple):
    text: str
    run: Compiled
    #: the fields it reads, in order of appearance (for the evidence's values)
    fields: Tuple[str, ...]


_COMPARE: Dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}


def _age_days(value: Any, now: float) -> float:
    return (now - float(value)) / 86400.0


def _len(value: Any) -> int:
    return len(value)


def _lower(value: Any) -> str:
    return str(value).lower()


#: function name -> (implementation, needs the evaluation time)
FUNCTIONS: Dict[str, Tuple[Callable[..., Any], bool]] = {
    "age_days": (_age_days, True), "len": (_len, False), "lower": (_lower, False),
}


def _fail(node: ast.AST, why: str) -> ConditionError:
    return ConditionError("%s (cột / column %d)" % (why, getattr(node, "col_offset", 0) + 1))


class _Compiler:
    def __init__(self, names: FrozenSet[str]) -> None:
        self.names = names
        self.fields: List[str] = []

    def build(self, node: ast.AST) -> Compiled:
        if isinstance(node, ast.BoolOp):
            parts = [self.build(v) for v in node.values]
            return _and(parts) if isinstance(node.op, ast.And) else _or(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.build(node.operand)
            return lambda env: not inner(env)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) \
                and isinstance(node.operand, ast.Constant) \
                and isinstance(node.operand.value, (int, float)) \
                and not isinstance(node.operand.value, bool):
            negative = -node.operand.value
            return lambda env: negative
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.Constant):
            if node.value is None or not isinstance(node.value, (int, float, str)):
                raise _fail(node, "chỉ nhận số, chuỗi, true/false / only numbers, strings, "
                                  "true/false")
            constant = node.value
            return lambda env: constant
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [self.build(e) for e in node.elts]
            return lambda env: [f(env) for f in items]
        if isinstance(node, ast.Name):
            return self._name(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        raise _fail(node, "biểu thức không được phép / not allowed: %s" % type(node).__name__)

    def _name(self, node: ast.Name) -> Compiled:
        if node.id in _CONSTANTS:
            value = _CONSTANTS[node.id]
            return lambda env: value
        if node.id not in self.names:
            raise _fail(node, "trường không có trong danh mục / unknown field %r" % node.id)
        name = node.id
        if name not in self.fields:
            self.fields.append(name)

        def get(env: Mapping[str, Any]) -> Any:
            value = env.get(name)
            if value is None:
                raise Unknown(name)
            return value
        return get

    def _call(self, node: ast.Call) -> Compiled:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise _fail(node, "hàm không được phép / unknown function (allowed: %s)"
                        % ", ".join(sorted(FUNCTIONS)))
        if node.keywords or len(node.args) != 1:
            raise _fail(node, "%s() nhận đúng một đối số / takes one argument" % node.func.id)
        fn, needs_now = FUNCTIONS[node.func.id]
        arg = self.build(node.args[0])
        fn_name = node.func.id

        def call(env: Mapping[str, Any]) -> Any:
            value = arg(env)
            try:
                return fn(value, env[NOW]) if needs_now else fn(value)
            except (TypeError, ValueError):
                raise Unknown(fn_name) from None
        return call

    def _compare(self, node: ast.Compare) -> Compiled:
        first = self.build(node.left)
        rest = [(self._op(op), self.build(c)) for op, c in zip(node.ops, node.comparators)]

        def compare(env: Mapping[str, Any]) -> bool:
            left = first(env)
            for op, get in rest:
                right = get(env)
                try:
                    if not op(left, right):
                        return False
                except TypeError:  # "a" < 3: a value of the wrong kind is no verdict
                    raise Unknown("?") from None
                left = right
            return True
        return compare

    @staticmethod
    def _op(op: ast.cmpop) -> Callable[[Any, Any], bool]:
        fn = _COMPARE.get(type(op))
        if fn is None:
            raise _fail(op, "phép so sánh không được phép / comparison not allowed")
        return fn


def _and(parts: List[Compiled]) -> Compiled:
    def run(env: Mapping[str, Any]) -> bool:
        missing: Optional[Unknown] = None
        for p in parts:
            try:
                if not p(env):
                    return False
            except Unknown as exc:
                missing = missing or exc
        if missing is not None:
            raise missing
        return True
    return run


def _or(parts: List[Compiled]) -> Compiled:
    def run(env: Mapping[str, Any]) -> bool:
        missing: Optional[Unknown] = None
        for p in parts:
            try:
                if p(env):
                    return True
            except Unknown as exc:
                missing = missing or exc
        if missing is not None:
            raise missing
        return False
    return run


def compile_condition(text: str, names: FrozenSet[str]) -> Condition:
    """Parse and compile ``text``; ConditionError says why it is refused."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError("điều kiện rỗng / empty condition")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ConditionError("cú pháp sai / syntax error: %s (cột / column %s)"
                             % (exc.msg, exc.offset)) from None
    c = _Compiler(names)
    run = c.build(tree.body)
    return Condition(text.strip(), run, tuple(c.fields))


__all__ = ["Condition", "ConditionError", "Unknown", "compile_condition", "FUNCTIONS", "NOW"]
