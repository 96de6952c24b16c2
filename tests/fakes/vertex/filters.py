"""The `filter` of Vertex list calls: the AIP-160 subset Vertex documents for models, endpoints and jobs.

Supported: `field = "v"`, `field != "v"`, `<`, `>`, `<=`, `>=` (string order, which is time order for
RFC 3339 times), `field:*` / `labels.key:*` (has), `labels.key="v"`, NOT / `-`, AND, OR (which binds
tighter than AND, as AIP-160 says), parentheses. Field names in snake_case or camelCase. A field the
resource kind does not allow is INVALID_ARGUMENT, as on Vertex.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from .wire import ApiError, camel

_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<op><=|>=|!=|=|<|>|:)|(?P<paren>[()])'
    r'|(?P<word>[^\s()=!<>:"]+))'
)

Predicate = Callable[[dict], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter {text!r} at position {pos}.")
        kind = match.lastgroup
        value = match.group(kind)
        out.append((kind, value))
        pos = match.end()
    return out


def compile_filter(text: str | None, allowed: set[str]) -> Predicate:
    """Parse `text` into a predicate over a stored resource (camelCase JSON); `allowed` = top-level fields."""
    if not text or not text.strip():
        return lambda _resource: True
    parser = _Parser(_tokens(text), allowed, text)
    predicate = parser.expression()
    if parser.pos != len(parser.tokens):
        raise ApiError("INVALID_ARGUMENT", f"Invalid filter {text!r}: unexpected {parser.tokens[parser.pos][1]!r}.")
    return predicate


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], allowed: set[str], text: str):
        self.tokens, self.pos, self.allowed, self.text = tokens, 0, allowed, text

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _next(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter {self.text!r}: unexpected end.")
        self.pos += 1
        return token

    def expression(self) -> Predicate:  # AND of disjunctions (AIP-160: OR binds tighter)
        parts = [self.disjunction()]
        while self._peek() in (("word", "AND"),) or self._starts_term():
            if self._peek() == ("word", "AND"):
                self.pos += 1
            parts.append(self.disjunction())
        return lambda r: all(p(r) for p in parts)

    def _starts_term(self) -> bool:  # AIP-160: juxtaposition means AND
        token = self._peek()
        return token is not None and token not in (("paren", ")"), ("word", "OR"))

    def disjunction(self) -> Predicate:
        parts = [self.term()]
        while self._peek() == ("word", "OR"):
            self.pos += 1
            parts.append(self.term())
        return lambda r: any(p(r) for p in parts)

    def term(self) -> Predicate:
        token = self._peek()
        if token == ("word", "NOT"):
            self.pos += 1
            inner = self.term()
            return lambda r: not inner(r)
        if token is not None and token[0] == "word" and token[1].startswith("-") and len(token[1]) > 1:
            self.tokens[self.pos] = ("word", token[1][1:])
            inner = self.term()
            return lambda r: not inner(r)
        if token == ("paren", "("):
            self.pos += 1
            inner = self.expression()
            if self._next() != ("paren", ")"):
                raise ApiError("INVALID_ARGUMENT", f"Invalid filter {self.text!r}: missing ')'.")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        kind, field = self._next()
        if kind != "word":
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter {self.text!r}: expected a field, got {field!r}.")
        kind, op = self._next()
        if kind != "op":
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter {self.text!r}: expected an operator after {field!r}.")
        kind, raw = self._next()
        if kind == "str":
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        elif kind == "word":
            value = raw
        else:
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter {self.text!r}: expected a value after {op!r}.")
        getter = self._getter(field)
        if op == ":":
            return lambda r: (getter(r) is not None) if value == "*" else _has(getter(r), value)
        compare = {
            "=": lambda a, b: a == b,
            "!=": lambda a, b: a != b,
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
        }[op]

        def predicate(resource: dict) -> bool:
            actual = getter(resource)
            if actual is None:
                return op == "!=" or (op == "=" and value == "")
            return compare(str(actual), value)

        return predicate

    def _getter(self, field: str) -> Callable[[dict], Any]:
        path = [camel(part) if i == 0 else part for i, part in enumerate(field.split("."))]
        if path[0] not in self.allowed:
            raise ApiError(
                "INVALID_ARGUMENT",
                f"Unsupported field in filter: {field!r}. Supported fields: {', '.join(sorted(self.allowed))}.",
            )
        if path[0] == "labels" and len(path) != 2:
            raise ApiError("INVALID_ARGUMENT", f"Invalid filter {self.text!r}: use labels.<key>.")

        def get(resource: dict) -> Any:
            value: Any = resource
            for part in path:
                if not isinstance(value, dict) or part not in value:
                    return None
                value = value[part]
            return value

        return get


def _has(actual: Any, value: str) -> bool:
    if isinstance(actual, (list, dict)):
        return value in actual
    return actual is not None and value in str(actual)
