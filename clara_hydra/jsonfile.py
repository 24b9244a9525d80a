"""Reading a JSON file as Clara's tools must: strict JSON (no NaN, no Infinity, no comments), UTF-8,
no key written twice in one object, no lone surrogate, not nested past MAX_DEPTH; each refusal a
located line. Pure: the standard library and the error types."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import MAX_DEPTH, ConfigSyntaxError
from .paths import clara, nodes


def load_json(path: str, what: str = "config") -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise ConfigSyntaxError(f"malformed JSON: not UTF-8 text (byte {exc.start})", file=path,
                                hint="save the file as UTF-8") from None
    except FileNotFoundError:
        raise ConfigSyntaxError(f"no such {what} file", file=path,
                                hint="check the path") from None
    except OSError as exc:
        raise ConfigSyntaxError(f"cannot read the {what} file: {exc.strerror}", file=path) from None
    duplicates: dict[int, str] = {}  # id of a JSON object -> its first key written twice

    def pairs(items: list) -> dict:
        obj = dict(items)
        if len(obj) != len(items):  # JSON readers keep the last value silently
            keys = [k for k, _ in items]
            duplicates[id(obj)] = next(k for i, k in enumerate(keys) if k in keys[:i])
        return obj

    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                          object_pairs_hook=pairs)
    except _NotFinite as exc:
        line, col = _locate_number(text, exc.token)
        raise ConfigSyntaxError(f"malformed JSON: {exc.token} is not a finite number", file=path,
                                location=f"line {line}, column {col}",
                                hint="JSON numbers must be finite: write a number or null") from None
    except json.JSONDecodeError as exc:
        raise ConfigSyntaxError(
            f"malformed JSON: {exc.msg}", file=path, location=f"line {exc.lineno}, column {exc.colno}",
            hint="Clara configs are strict JSON: no comments, no trailing commas") from None
    except RecursionError:
        raise ConfigSyntaxError("the JSON nests too deeply to read", file=path,
                                hint="flatten the nesting (Python's JSON reader stops near 1,000 levels)") from None
    _check_parsed(data, duplicates, path)
    return data


_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_parsed(data: Any, duplicates: dict[int, str], path: str) -> None:
    """One pass over the parsed JSON: how deep it nests, the first lone surrogate (in a key or a
    string), the first object with a key written twice; refused in that order."""
    depth, surrogate, duplicate = 0, None, None
    for loc, node in nodes(data):
        if isinstance(node, (dict, list)):
            depth = max(depth, len(loc) + 1)
        if surrogate is None and loc and isinstance(loc[-1], str) and _SURROGATE.search(loc[-1]):
            surrogate = loc[:-1] + (loc[-1].encode("utf-8", "backslashreplace").decode("ascii"),)
        if surrogate is None and isinstance(node, str) and _SURROGATE.search(node):
            surrogate = loc
        if duplicate is None and id(node) in duplicates and isinstance(node, dict):
            duplicate = loc + (duplicates[id(node)],)
    if depth > MAX_DEPTH:
        raise ConfigSyntaxError(f"the JSON nests {depth} levels deep, more than the {MAX_DEPTH} clara-hydra reads",
                                file=path, hint="flatten the nesting")
    if surrogate is not None:
        raise ConfigSyntaxError("a string holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape without its pair), "
                                "which is not text", file=path, location=clara(surrogate),
                                hint="write the character itself, or both halves of its surrogate pair")
    if duplicate is not None:
        raise ConfigSyntaxError(f"key '{duplicate[-1]}' is written twice in one object (JSON readers keep only the "
                                f"last one)", file=path, location=clara(duplicate), hint="merge the two, or delete one")


class _NotFinite(ValueError):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _refuse_constant(name: str):
    raise _NotFinite(name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?(?:Infinity|NaN)|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)')


def _locate_number(text: str, token: str) -> tuple[int, int]:
    """Line and column of the first non-finite number ``token`` outside strings."""
    for m in _TOKEN.finditer(text):
        number = m.group(1)
        if number is None:
            continue
        if number == token:
            before = text[:m.start(1)]
            return before.count("\n") + 1, m.start(1) - (before.rfind("\n") + 1) + 1
    return 1, 1


__all__ = ["load_json"]
