"""conda.cli.main: main(*args) and main_subshell (contract-wrapper.md point
3: main uses ``args or sys.argv[1:]``; main_subshell calls
context.plugin_manager.disable_external_plugins() when context.no_plugins,
conda-plugin.md §1), argument parsing, dispatch (pre_commands before the
command body, conda-plugin.md §5; plugin subcommands get every argument
after their name, §2) and conda's error printing (conda-formats §6)."""

import argparse
import json
import sys
import traceback

from .. import CondaError
from ..base.context import context

BUILTIN = ("install", "create", "update", "remove", "uninstall")  # SIMPLIFIED: no `conda env`
GLOBAL_FLAGS = ("--no-plugins", "--json", "-v", "-q", "--quiet")


def _add_install_args(p, remove=False):
    g = p.add_mutually_exclusive_group()
    g.add_argument("-n", "--name")
    g.add_argument("-p", "--prefix")
    p.add_argument("-c", "--channel", action="append")
    p.add_argument("--override-channels", action="store_true")
    p.add_argument("--dry-run", "-d", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("-y", "--yes", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--no-plugins", action="store_true")
    if not remove:
        p.add_argument("--file", action="append")
        p.add_argument("--clone")
    p.add_argument("packages", nargs="*")


def generate_pre_parser():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--no-plugins", action="store_true")
    p.add_argument("--json", action="store_true")
    return p


def generate_parser(subcommands):
    p = argparse.ArgumentParser(prog="conda")
    p.add_argument("--no-plugins", action="store_true")
    p.add_argument("--json", action="store_true")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    sub.required = True
    for name in ("install", "create", "update"):
        _add_install_args(sub.add_parser(name))
    _add_install_args(sub.add_parser("remove", aliases=["uninstall"]), remove=True)
    for name, s in subcommands.items():
        sub.add_parser(name, help=s.summary)
    return p


def do_call(args) -> int:
    from .install import install

    command = {"uninstall": "remove"}.get(args.cmd, args.cmd)
    context.plugin_manager.invoke_pre_commands(command)  # §5: before the body
    return install(args, command)


def print_conda_exception(e: CondaError) -> None:
    if not e.return_code:  # DryRunExit, CondaSystemExit: a line, nothing under --json (§6)
        if not context.json:
            print(str(e))
        return
    if context.json:
        out = sys.stdout if e.return_code else sys.stderr
        print(json.dumps(e.dump_map(), indent=2, sort_keys=True, default=str), file=out)
    elif e.return_code:
        print(f"\n{type(e).__name__}: {e}\n", file=sys.stderr)


def main_subshell(*args) -> int:
    args = list(args) or ["--help"]
    pre_args, _ = generate_pre_parser().parse_known_args(args)
    context.__init_context__(pre_args)
    if context.no_plugins:
        context.plugin_manager.disable_external_plugins()
    context.__init_context__(pre_args)
    subcommands = context.plugin_manager.get_subcommands()
    # A plugin subcommand gets every argument after its name, untouched (§2).
    i = 0
    while i < len(args) and args[i] in GLOBAL_FLAGS:
        i += 1
    if i < len(args) and args[i] in subcommands and args[i] not in BUILTIN:
        status = subcommands[args[i]].action(tuple(args[i + 1:]))
        return 0 if status is None else int(status) % 256
    parsed = generate_parser(subcommands).parse_args(args)
    context.__init_context__(parsed)
    return do_call(parsed)


def main(*args) -> int:
    args = args or tuple(sys.argv[1:])
    try:
        return main_subshell(*args)
    except CondaError as e:
        print_conda_exception(e)
        return e.return_code
    except SystemExit:
        raise
    except KeyboardInterrupt:
        return 130
    except BaseException:
        print("# >>>>>>>>>>>>>>>>>>>>>> ERROR REPORT <<<<<<<<<<<<<<<<<<<<<<\n", file=sys.stderr)
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
