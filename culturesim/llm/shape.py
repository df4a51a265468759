"""Replies in a declared shape: a request may carry a JSON Schema its reply must satisfy.

Why one module: every backend constrains decoding its own way (the embedded model under
the grammar llama.cpp derives from the schema, an OpenAI-compatible server through
``response_format``, litellm where the provider supports it), but what the schema *is*
(one canonical JSON text, part of the cache key), how it is checked at scenario load and
how a reply is read against it must be one thing for all of them. The retry layer
(culturesim/llm/retry.py) asks again, with a new seed, a reply that does not parse
against its request's schema (a provider without constrained decoding, or a grammar
reply cut short by ``max_tokens``), and finally records it with :data:`MISMATCH`.

Schemas are checked with ``jsonschema`` (Draft 2020-12 unless ``$schema`` names
another draft). Only what the grammar can enforce is enforced while decoding; the rest
(``uniqueItems``, numeric bounds for llama.cpp's converter) is enforced by validation here.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import Any

from culturesim.llm.types import Request

MISMATCH = "ShapeError: reply does not match the schema"


class SchemaError(ValueError):
    """A schema that is not a valid JSON Schema (one line: what is wrong); ``path`` is where
    inside the schema (keys and list indices, as strings), for the loader to name a line."""

    def __init__(self, message: str, path: tuple[str, ...] = ()):
        super().__init__(message)
        self.path = path


def canonical(schema: dict | str) -> str:
    """The one JSON text of a schema: sorted keys, no spaces (what requests and the cache carry)."""
    value = json.loads(schema) if isinstance(schema, str) else schema
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_schema(schema: Any) -> str:
    """The canonical text of ``schema`` if it is a valid JSON Schema object, else SchemaError.

    Only an object schema is accepted: a reply the program reads has named fields."""
    import jsonschema

    if not isinstance(schema, dict):
        raise SchemaError(f"a JSON Schema must be a mapping, not {type(schema).__name__}")
    try:
        text = canonical(schema)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"not JSON-serialisable ({exc})") from None
    validator = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"not a valid JSON Schema: {exc.message}", tuple(str(p) for p in exc.path)) from None
    if schema.get("type") != "object":
        raise SchemaError('the reply schema must describe an object ("type": "object")', ("type",))
    return text


def with_schema(request: Request, schema: dict | str) -> Request:
    """``request`` asking for a reply in ``schema``'s shape."""
    return dataclasses.replace(request, schema=canonical(schema))


@lru_cache(maxsize=64)
def _validator(schema_text: str):
    import jsonschema

    schema = json.loads(schema_text)
    return jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)(schema)


def parse(text: str | None, schema_text: str) -> Any | None:
    """The reply's JSON value if ``text`` is JSON satisfying the schema, else None.

    Surrounding whitespace and a Markdown code fence (which chat models add) are allowed."""
    if not text:
        return None
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").strip()
        if body.lower().startswith("json"):
            body = body[4:]
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if _validator(schema_text).is_valid(value) else None


def matches(text: str | None, schema_text: str) -> bool:
    return parse(text, schema_text) is not None


def response_format(schema_text: str, name: str = "reply") -> dict:
    """The OpenAI ``response_format`` asking for the schema (vLLM's guided decoding reads it)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": json.loads(schema_text), "strict": True}}


def schema_of_response_format(response_format: Any) -> str | None:
    """The canonical schema text inside an OpenAI ``response_format``, or None (providers read it)."""
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    inner = response_format.get("json_schema") or {}
    schema = inner.get("schema") if isinstance(inner, dict) else None
    return canonical(schema) if isinstance(schema, dict) else None
