"""A stand-in for conda, written for condaguard's end-to-end tests.

It is NOT conda and contains no code of conda's. It behaves as
/work/shared/spec/conda-plugin.md and conda-formats.md describe real conda
(24.11 / 26.7, classic solver) for what the conda-guard plugin depends on:
plugin loading from the ``conda`` entry-point group, --no-plugins, the order
of pre_commands / post_solves, conda create deleting an existing prefix
before the solve, the package cache reuse rules (conda-formats §3.3),
downloading, extracting and linking (§2.4, §2.5, §4), explicit installs
(§5) and --dry-run / --json output (§6). Each module says which section it
mirrors; simplifications are marked "SIMPLIFIED".
"""

__version__ = "24.11.3+standin"


class CondaError(Exception):
    """conda's base error: printed as ``Name: message`` (or JSON with
    --json), exit status ``return_code`` (conda-formats §6)."""

    return_code = 1

    def __init__(self, message: str = "", **kwargs):
        super().__init__(message)
        self.message = message
        self._kwargs = kwargs

    def __str__(self) -> str:
        return self.message

    def dump_map(self) -> dict:
        out = {k: v for k, v in self._kwargs.items()}
        out.update(exception_type=str(type(self)), exception_name=type(self).__name__,
                   message=str(self), error=repr(self), caused_by=repr(self.__cause__))
        return out
