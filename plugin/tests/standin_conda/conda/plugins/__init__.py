"""conda.plugins: the hook markers (conda-plugin.md §1). The types also stay
re-exported here, as in conda before 26.9."""

import pluggy

hookimpl = pluggy.HookimplMarker("conda")
hookspec = pluggy.HookspecMarker("conda")

from .types import CondaPostSolve, CondaPreCommand, CondaSetting, CondaSubcommand  # noqa: E402,F401
