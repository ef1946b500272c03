"""Command-line usage errors as one line: ``error: --users: 0 is not in the range x>=1``.

click and typer print a usage error as a boxed, multi-line block (usage, a "Try
--help" line, the message in a panel). :class:`OneLineUsage`, the application's
group class, catches every :class:`click.ClickException` of any command once, at
the top, and prints the same one-line shape as every other bad input: the option or
argument at fault, what is wrong and what is valid, on stderr, exit code 2. Help
(``--help``, a group called without a command) is untouched.

An empty path (``--out ""``, ``-e "$UNSET"``) is refused before parsing: click
would read it as ``.``, the current folder, and write results (or a whole
simulated dataset) there.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["PATH_OPTIONS", "OneLineUsage", "usage_line"]

PATH_OPTIONS = frozenset(
    {"--out", "--experiment", "-e", "--from-sums", "--report", "--results", "--refinement"}
    | {"--segments", "-s", "--data", "-d"}
)
"""Every option of any command whose value is a file or folder path."""


def _is(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is (a subclass of) click's error class ``name``.

    typer vendors click under a private module, so its classes are matched by name
    rather than imported.
    """
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def _printable(text: str) -> str:
    """One line with no terminal control in it (user text reaches the terminal here).

    Whitespace runs (line breaks included) become one space, then
    :func:`reports.format.plain_text` drops escape sequences whole and shows any
    other control character, as for every other line a command prints.
    """
    from reports.format import plain_text

    return plain_text(" ".join(text.split()))


def _param_name(exc: Any) -> str:
    param = getattr(exc, "param", None)
    if param is not None and getattr(param, "param_type_name", "") == "option":
        opts = list(getattr(param, "opts", ())) or [f"--{param.name}"]
        longs = [o for o in opts if o.startswith("--")]
        return str((longs or opts)[0])
    if param is not None and getattr(param, "name", None):
        return str(param.name).upper()
    hint = getattr(exc, "param_hint", None)
    return hint.strip("'\"") if isinstance(hint, str) and hint else "option"


def _sentence(message: str) -> str:
    message = message.strip().rstrip(".")
    return message[:1].lower() + message[1:] if message[1:2].islower() else message


def _help(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    return f" (see '{ctx.command_path} --help')" if ctx is not None else ""


def usage_line(exc: typer.TyperException) -> str:
    """The one-line message of a click error: ``<option or argument>: <what is wrong>``."""
    if _is(exc, "MissingParameter"):
        param = getattr(exc, "param", None)
        kind = getattr(exc, "param_type", None) or getattr(param, "param_type_name", "value")
        text = f"{_param_name(exc)}: missing; this {kind} is required{_help(exc)}"
    elif _is(exc, "BadParameter"):
        text = f"{_param_name(exc)}: {_sentence(exc.message)}"
    elif _is(exc, "NoSuchOption"):
        possible = sorted(getattr(exc, "possibilities", None) or ())
        close = f"; did you mean {possible[0]}?" if len(possible) == 1 else ""
        valid = f"; options are {', '.join(possible)}" if len(possible) > 1 else ""
        text = f"{getattr(exc, 'option_name', '')}: no such option{close}{valid}{_help(exc)}"
    elif _is(exc, "BadOptionUsage"):
        name = getattr(exc, "option_name", "")
        text = f"{name}: {_sentence(exc.message).replace(f'option {name!r} ', '')}"
    else:
        text = f"{_sentence(exc.format_message())}{_help(exc)}"
    return _printable(text)


def _one_line(exc: typer.TyperException) -> typer.Exit:
    typer.echo(f"error: {usage_line(exc)}", err=True)
    return typer.Exit(code=exc.exit_code)


def _empty_path(args: list[str]) -> str | None:
    """The first path option given an empty (or blank) value, if any."""
    for i, token in enumerate(args):
        name, eq, value = token.partition("=")
        if not eq or not token.startswith("--"):
            name, value = (args[i - 1] if i else ""), token
        if name in PATH_OPTIONS and not value.strip():
            return name
    return None


class OneLineUsage(TyperGroup):
    """typer's group, with every click error of any command printed as one line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        """Parse the top-level arguments; a usage error becomes one line and exit 2."""
        empty = _empty_path(args)
        if empty is not None:
            typer.echo(
                f"error: {empty}: empty path; give a file or folder ('.' for the current one)",
                err=True,
            )
            raise typer.Exit(code=2)
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer.TyperException as exc:
            if _is(exc, "NoArgsIsHelpError"):
                raise
            raise _one_line(exc) from None

    def invoke(self, ctx: Any) -> Any:
        """Run the command; its usage errors (parsing or ``BadParameter``) become one line."""
        try:
            return super().invoke(ctx)
        except typer.TyperException as exc:
            if _is(exc, "NoArgsIsHelpError"):
                raise
            raise _one_line(exc) from None
