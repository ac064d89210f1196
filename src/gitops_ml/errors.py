"""The one base class for mistakes a user can fix; the CLI prints these without a traceback."""

from pydantic import ValidationError


class UserError(Exception):
    """Bad input, bad params or a bad contract: printed as `error: <message>`, exit `exit_code`."""

    exit_code = 2


def invalid_field(error: ValidationError) -> str:
    """Pydantic's first complaint about a file's content: `field 'a.b': reason` (and how many
    more), for a message that names the file first."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"field '{field}': {first['msg']}{more}"
