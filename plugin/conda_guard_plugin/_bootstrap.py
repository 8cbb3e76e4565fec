"""Runs conda with the conda-guard plugin registered, proven before conda works.

``conda-guard install|create|update|remove|env create|env update ARGS`` runs
``CONDA_PYTHON .../conda_guard_plugin/_bootstrap.py ARGS`` with, in the
environment, CONDAGUARD_BOOTSTRAP_FD (a pipe to the wrapper) and CONDA_EXE.
This file:

1. imports the plugin from the folder that holds this package (the same module
   object conda's entry point would load, if the plugin is installed too);
2. registers it on conda's own plugin manager and proves that conda will call
   its post-solve, pre-command and subcommand hooks;
3. makes conda's "run without plugins" (``--no-plugins``, ``no_plugins``)
   end the run with status 2 instead of dropping the gate;
4. tells the wrapper ``registered conda-guard VERSION`` and calls conda's main.

If any step fails conda's main never runs: one line on stderr, status 2, and
the wrapper, which never got the line, exits 2 too. Standard library and
conda's API only; run as a script, never imported.
"""

import os
import sys

NAME = "conda-guard"
HOOKS = ("conda_post_solves", "conda_pre_commands", "conda_subcommands")
REFUSED = 2


def refuse(message):
    """One line on stderr, then status 2, past any handler conda installed."""
    print(f"conda-guard: {message}; conda did not run with the gate", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(REFUSED)


def no_plugins(*_args, **_kwargs):
    """Stands in for the plugin manager's disable_external_plugins."""
    print("conda-guard: conda was asked to run without plugins (no_plugins); the gate cannot run",
          file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(REFUSED)  # not SystemExit: conda's exception handler must not turn it into anything else


def main(args):
    try:
        fd = int(os.environ.pop("CONDAGUARD_BOOTSTRAP_FD"))
        conda_exe = os.environ["CONDA_EXE"]
    except (KeyError, ValueError):
        refuse("the bootstrap runs only under conda-guard (no CONDAGUARD_BOOTSTRAP_FD or CONDA_EXE)")

    # Python put this file's folder first on sys.path: a module here must not
    # shadow one of conda's. The folder holding the package goes first instead.
    here = os.path.realpath(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != here]
    sys.path.insert(0, os.path.dirname(here))

    try:
        import conda_guard_plugin
        import conda_guard_plugin.plugin as plugin
        from conda.plugins.manager import get_plugin_manager

        pm = get_plugin_manager()  # conda's cached instance, entry points loaded
        pm.register(plugin, name=NAME)  # None when the entry point registered it already
        if pm.get_plugin(NAME) is not plugin:
            refuse(f"another plugin is registered as {NAME}")
        if pm.is_blocked(NAME):
            refuse(f"the plugin {NAME} is blocked")
        for hook in HOOKS:
            impls = getattr(pm.hook, hook).get_hookimpls()
            if not any(i.plugin is plugin and i.function is getattr(plugin, hook) for i in impls):
                refuse(f"conda would not call the plugin's {hook}")
        pm.disable_external_plugins = no_plugins
        # conda.cli's own `main` (the function) shadows the module of that name.
        from conda.cli.main import main as conda_main
    except Exception as e:  # any failure to prove the gate refuses
        refuse(f"cannot load the plugin into conda: {type(e).__name__}: {' '.join(str(e).split())}")

    os.write(fd, f"registered {NAME} {conda_guard_plugin.__version__}\n".encode())
    os.close(fd)
    sys.argv = [conda_exe, *args]
    sys.exit(conda_main(*args))


if __name__ == "__main__":
    main(sys.argv[1:])
