"""conda.plugins.hookspec: the hooks this stand-in calls (conda >= 24.3:
subcommands, pre_commands, post_solves, settings; conda-plugin.md §1)."""

from . import hookspec


class CondaSpecs:
    @hookspec
    def conda_subcommands(self):
        """Yields CondaSubcommand."""

    @hookspec
    def conda_pre_commands(self):
        """Yields CondaPreCommand."""

    @hookspec
    def conda_post_solves(self):
        """Yields CondaPostSolve."""

    @hookspec
    def conda_settings(self):
        """Yields CondaSetting."""
