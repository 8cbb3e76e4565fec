"""conda.plugins.manager (conda-plugin.md §1, contract-wrapper.md point 3):
a pluggy PluginManager loading the entry points of group ``conda`` from
importlib.metadata.distributions(); a plugin whose import raises is skipped
with one stderr line; get_plugin_manager() is cached."""

import functools
import sys
from importlib.metadata import distributions

import pluggy

from ..exceptions import CondaValueError
from .hookspec import CondaSpecs


class CondaPluginManager(pluggy.PluginManager):
    def __init__(self, project_name: str = "conda") -> None:
        super().__init__(project_name)
        self.add_hookspecs(CondaSpecs)

    def register(self, plugin, name=None):
        """None when already registered (conda catches pluggy's ValueError)."""
        try:
            return super().register(plugin, name=name)
        except ValueError:
            return None

    def load_entrypoints(self, group: str) -> int:
        count = 0
        seen = set()
        for dist in distributions():
            for ep in dist.entry_points:
                if ep.group != group or ep.name in seen:
                    continue
                seen.add(ep.name)
                try:
                    plugin = ep.load()
                except Exception as err:  # §1: skipped, one stderr line
                    print(f"Error while loading conda entry point: {ep.name} ({err})", file=sys.stderr)
                    continue
                # conda 26.7.1: register(plugin), so under the module's name
                if self.register(plugin) is not None:
                    count += 1
        return count

    def disable_external_plugins(self) -> None:
        """--no-plugins: block every registered plugin (the stand-in has no
        built-in ones; SIMPLIFIED: real conda keeps its built-ins)."""
        for name, _plugin in list(self.list_name_plugin()):
            self.set_blocked(name)

    def get_hook_results(self, name: str) -> list:
        hook = getattr(self.hook, f"conda_{name}")
        return [item for result in hook() for item in result]

    def get_subcommands(self) -> dict:
        out = {}
        for sub in self.get_hook_results("subcommands"):
            if sub.name in out:
                raise CondaValueError(f"Conflicting `subcommands` plugins found: {sub.name}")
            out[sub.name] = sub
        return out

    def invoke_pre_commands(self, command: str) -> None:
        for hook in self.get_hook_results("pre_commands"):
            if command in hook.run_for:
                hook.action(command)

    def invoke_post_solves(self, repodata_fn, unlink_precs, link_precs) -> None:
        for hook in self.get_hook_results("post_solves"):
            hook.action(repodata_fn, unlink_precs, link_precs)

    def get_settings(self) -> dict:
        return {s.name: s for s in self.get_hook_results("settings")}


@functools.cache
def get_plugin_manager() -> CondaPluginManager:
    pm = CondaPluginManager()
    pm.load_entrypoints("conda")
    return pm
