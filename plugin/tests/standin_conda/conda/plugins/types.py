"""conda.plugins.types: the dataclasses hooks yield (conda-plugin.md §1-§6)."""

from dataclasses import dataclass, field
from typing import Any, Callable, Optional


@dataclass
class CondaSubcommand:
    name: str
    summary: str
    action: Callable[..., Any]
    configure_parser: Optional[Callable[..., Any]] = None


@dataclass
class CondaPreCommand:
    name: str
    action: Callable[[str], Any]
    run_for: set = field(default_factory=set)


@dataclass
class CondaPostSolve:
    name: str
    action: Callable[..., Any]


@dataclass
class CondaSetting:
    name: str
    description: str
    parameter: Any
    aliases: tuple = ()
