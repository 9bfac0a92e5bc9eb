"""Small constrained value types the kinds share: quantities, scalars, URIs, int-or-percent.

Each is an Annotated type, so a bad value fails validation at its own field path, and each
carries a JSON Schema that editors understand.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Annotated, Any

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
_DECIMAL |= {"P": 1e15, "E": 1e18}
_EXACT_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15}
_EXACT_DECIMAL |= {"E": 18}
_URI = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>\S+)$")
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PERCENT = re.compile(r"^\d+%$")

MAX_EXPONENT = 308
"""The largest decimal exponent a quantity may have (`1e308`): the most a float holds."""

MODEL_URI_SCHEMES = ("hf", "file", "s3", "gs", "az", "http", "https", "oci")
"""Schemes a model version's source may use."""


def parse_quantity(text: str) -> float:
    """The number a Kubernetes quantity stands for: '80Gi' -> 85899345920.0, '500m' -> 0.5."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a quantity (e.g. 4, 500m, 16Gi, 1e9)")
    number = float(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    amount = number * 10.0 ** _exponent(text, suffix)
    if not math.isfinite(amount):
        raise ValueError(f"{text!r} is too large for a quantity")
    return amount


def parse_quantity_exact(text: str) -> Fraction:
    """The exact number a quantity stands for, for comparisons that must not round:
    '80Gi' -> Fraction(85899345920), '100m' -> Fraction(1, 10)."""
    match = _QUANTITY.match(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a quantity (e.g. 4, 500m, 16Gi, 1e9)")
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _EXACT_DECIMAL:
        return number * Fraction(10) ** _EXACT_DECIMAL[suffix]
    return number * Fraction(10) ** _exponent(text, suffix)


def _exponent(text: str, suffix: str) -> int:
    """The N of an `eN` suffix, within what a float can scale by: an unbounded one would
    have `10 ** N` hold the server for minutes (`1e99999999`) or overflow into a 500."""
    exponent = int(suffix[1:])
    if abs(exponent) > MAX_EXPONENT:
        raise ValueError(f"{text!r} has an exponent outside ±{MAX_EXPONENT}")
    return exponent


def check_quantity(text: str) -> str:
    parse_quantity(text)
    return text


def check_scalar(value: Any) -> str | int | float | bool:
    """Accept a string, integer, float or boolean as it is; refuse lists, maps and null."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("numbers must be finite")
    if isinstance(value, str | int | float | bool):
        return value
    raise ValueError(f"expected a string, number or boolean, got {type(value).__name__}")


def check_int_or_percent(value: Any) -> int | str:
    """Accept a non-negative integer or a percentage string such as '25%'."""
    if isinstance(value, bool):
        raise ValueError("expected an integer or a percentage such as '25%'")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and _PERCENT.match(value) and int(value[:-1]) <= 100:
        return value
    raise ValueError(f"{value!r} is not a non-negative integer or a percentage 0%..100%")


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """A count from an int-or-percent of `total`; maxSurge rounds up, maxUnavailable down."""
    if isinstance(value, int):
        return value
    share = int(value[:-1]) * total
    return -(-share // 100) if round_up else share // 100


def check_model_uri(text: str) -> str:
    match = _URI.match(text)
    if match is None or match["scheme"] not in MODEL_URI_SCHEMES:
        schemes = ", ".join(f"{s}://" for s in MODEL_URI_SCHEMES)
        raise ValueError(f"{text!r} is not a model source URI; use one of {schemes}")
    return text


def check_http_url(text: str) -> str:
    if not _HTTP_URL.match(text):
        raise ValueError(f"{text!r} is not an http:// or https:// URL")
    return text


def check_env_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise ValueError(f"{name!r} is not an environment variable name")
    return name


def check_env(env: dict[str, str]) -> dict[str, str]:
    for name in env:
        check_env_name(name)
    return env


Quantity = Annotated[
    str,
    AfterValidator(check_quantity),
    WithJsonSchema({"type": "string", "pattern": _QUANTITY.pattern}),
]
"""A Kubernetes quantity such as '8', '500m' or '80Gi'; parse it with parse_quantity."""

Scalar = Annotated[
    str | int | float | bool,
    PlainValidator(check_scalar),
    WithJsonSchema({"type": ["string", "number", "boolean"]}),
]
"""A string, number or boolean: a device attribute or a metadata value."""

IntOrPercent = Annotated[
    int | str,
    PlainValidator(check_int_or_percent),
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": r"^\d+%$"}]}
    ),
]
"""A count, or a percentage of a total such as '25%'."""

ModelUri = Annotated[str, AfterValidator(check_model_uri)]
"""Where weights live: hf://org/name, file:///path, s3://bucket/key, gs://, az://, http(s)://, oci://."""

HttpUrl = Annotated[str, AfterValidator(check_http_url)]
"""An http:// or https:// URL, kept exactly as written."""

EnvName = Annotated[str, AfterValidator(check_env_name)]
"""An environment variable name."""

Env = Annotated[dict[str, str], AfterValidator(check_env)]
"""Environment variables, name to value."""

Seconds = Annotated[float, Field(gt=0)]
"""A positive duration in seconds."""

Price = Annotated[float, Field(ge=0)]
"""A price in US dollars."""
