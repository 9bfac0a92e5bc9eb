"""The exceptions of the api package, one tree under ApiError.

Callers at a boundary (the server, the CLI) catch ApiError, or one of its subclasses to map it
onto a status code: ValidationFailure is a 422 with causes, SelectorError and DocumentError a 400.
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic_core import PydanticCustomError

API_GROUP = "inferplane.dev"


class ApiError(Exception):
    """Base of every error the api package raises on purpose."""


class SelectorError(ApiError, ValueError):
    """A label or field selector that does not parse; the message names the bad term."""


class DocumentError(ApiError, ValueError):
    """A YAML document that is malformed or not a mapping."""

    def __init__(self, source: str, index: int, message: str) -> None:
        self.source = source
        """Where the text came from: a file name, or '-' for stdin."""
        self.index = index
        """0-based position of the document in the stream, empty documents counted."""
        self.message = message
        """What is wrong, with the YAML line and column where known."""
        super().__init__(f"{source}: document {index}: {message}")


class Cause(NamedTuple):
    """One reason an object is invalid, as the wire's details.causes[] entry carries it."""

    field: str
    """Path of the bad field, e.g. spec.resources.devices[0].count; '' for the whole object."""
    message: str
    """What is wrong with it, for people."""
    reason: str = "FieldValueInvalid"
    """Kubernetes cause type: FieldValueInvalid, FieldValueRequired, FieldValueNotSupported..."""


class ValidationFailure(ApiError, ValueError):
    """An object that does not match its schema; every bad field is one cause."""

    def __init__(self, causes: list[Cause], *, kind: str = "", name: str = "") -> None:
        self.causes = causes
        self.kind = kind
        self.name = name
        super().__init__(self._summary())

    def _summary(self) -> str:
        subject = f"{self.kind}.{API_GROUP}" if self.kind else "object"
        if self.name:
            subject += f' "{self.name}"'
        details = "; ".join(
            f"{c.field}: {c.message}" if c.field else c.message for c in self.causes
        )
        return f"{subject} is invalid: {details}"


class ExplainError(ApiError, LookupError):
    """A path explain cannot resolve; the message names the first unknown segment."""


NESTED_ERROR = "nested_value_error"


def field_error(*at: str | int, message: str) -> PydanticCustomError:
    """An error a model validator raises to blame a field below it, e.g. ('versions', 2, 'name').

    Pydantic places a model validator's error on the model itself; the api's error formatting
    appends `at` to that location, so the cause names the exact field.
    """
    return PydanticCustomError(NESTED_ERROR, "{message}", {"message": message, "at": at})
