"""The one base class for mistakes a user can fix; the CLI prints these without a traceback."""


class UserError(Exception):
    """Bad input, bad params or a bad contract: printed as `error: <message>`, exit `exit_code`."""

    exit_code = 2
