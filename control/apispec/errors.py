"""pydantic's ValidationError as one short message that names the field and never the value."""

from __future__ import annotations

import re

from pydantic import ValidationError

# A location is shown only when it looks like a field name (as ours do): an unknown field's name
# is the client's own text and might be anything (a pasted secret, a megabyte).
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _FIELD_NAME.fullmatch(part):
            text += f".{part}" if text else part
        else:
            return ""
    return text


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem, e.g. ``ttl: input should be a valid integer`` or ``unknown field: x``.

    Built from the error's location and pydantic's message, never from the input, so nothing
    the client sent (a token, a password) comes back in the message.
    """
    errors = exc.errors(include_url=False, include_input=False)
    if not errors:
        return "the request is not valid"
    first = errors[0]
    where = _location(first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown field: {where}" if where else "unknown field"
    elif kind == "missing":
        message = f"{where or 'a field'} is required"
    elif kind == "value_error" and "error" in first.get("ctx", {}):
        # Our own validators say what is wanted, without the field's name: "must be ...".
        message = f"{where or 'a field'} {first['ctx']['error']}"
    else:
        text = first["msg"]
        message = f"{where or 'the body'}: {text[:1].lower()}{text[1:]}"
    more = len(errors) - 1
    return message + (f" (and {more} more)" if more else "")
