"""conda.exceptions: the errors the plugin and the stand-in raise."""

from . import CondaError


class CondaVerificationError(CondaError):
    """Raised by a post-solve hook: exit 1, ``CondaVerificationError: msg``
    (conda-plugin.md §3)."""


class SafetyError(CondaError):
    pass


class ChecksumMismatchError(CondaError):
    pass


class PackagesNotFoundError(CondaError):
    pass


class CondaHTTPError(CondaError):
    pass


class ParseError(CondaError):
    pass


class CondaValueError(CondaError):
    pass


class DryRunExit(CondaError):
    """``--dry-run`` ends the command with status 0 (conda-formats §6)."""

    return_code = 0

    def __init__(self):
        super().__init__("Dry run. Exiting.")


class CondaSystemExit(CondaError):
    return_code = 0
