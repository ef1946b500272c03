"""Number formatting for every view: the one place results are rounded."""

from __future__ import annotations

import math
import re
from typing import TypeGuard

__all__ = [
    "DASH",
    "fmt_count",
    "fmt_days",
    "fmt_impact",
    "fmt_num",
    "fmt_p",
    "fmt_pct",
    "fmt_pct_interval",
    "fmt_seconds",
    "fmt_signed",
    "page_text",
    "plain_text",
    "terminal_text",
]

DASH = "–"


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def fmt_num(value: float | None, digits: int = 3) -> str:
    """A value with ``digits`` significant digits.

    Examples:
        >>> fmt_num(0.031234), fmt_num(1234.5), fmt_num(float("nan"))
        ('0.0312', '1.23e+03', '–')
    """
    if value is None or math.isnan(value):
        return DASH
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value:.{digits}g}"


def fmt_pct(value: float | None, digits: int = 1, *, signed: bool = True) -> str:
    """A share or a relative lift as a percentage.

    Examples:
        >>> fmt_pct(0.0737), fmt_pct(-0.2), fmt_pct(0.5, signed=False)
        ('+7.4%', '-20.0%', '50.0%')
    """
    if not _finite(value):
        return DASH
    sign = "+" if signed else ""
    return f"{value * 100:{sign}.{digits}f}%"


def fmt_pct_interval(low: float | None, high: float | None) -> str:
    """A confidence interval of a relative lift.

    An end without a bound (a one-sided test, or a Fieller set that is a single ray
    ``[low, inf)``) is open: ``∞``.

    Examples:
        >>> fmt_pct_interval(0.011, 0.136), fmt_pct_interval(0.12, float("inf"))
        ('[+1.1%, +13.6%]', '[+12.0%, ∞)')
    """
    if not _finite(low) and not _finite(high):
        return DASH
    left = f"[{fmt_pct(low)}" if _finite(low) else "(-∞"
    right = f"{fmt_pct(high)}]" if _finite(high) else "∞)"
    return f"{left}, {right}"


def fmt_p(value: float | None) -> str:
    """A p-value: three decimals, or ``<0.001``.

    Examples:
        >>> fmt_p(0.0213), fmt_p(1e-7)
        ('0.021', '<0.001')
    """
    if not _finite(value):
        return DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def fmt_count(value: int) -> str:
    """A count with thousands separators.

    Examples:
        >>> fmt_count(50112)
        '50,112'
    """
    return f"{value:,}"


def fmt_seconds(value: float) -> str:
    """A duration in seconds, to a tenth.

    Examples:
        >>> fmt_seconds(2.345)
        '2.3s'
    """
    return f"{value:.1f}s"


def fmt_signed(value: float | None) -> str:
    """A signed total: whole numbers with thousands separators from 100 on, else 3 digits.

    Examples:
        >>> fmt_signed(1234.4), fmt_signed(-0.4567), fmt_signed(float("nan"))
        ('+1,234', '-0.457', '–')
    """
    if not _finite(value):
        return DASH
    return f"{value:+,.0f}" if abs(value) >= 100 else f"{value:+.3g}"


def fmt_impact(value: float | None, low: float | None, high: float | None, unit: str) -> str:
    """A projected total change with its interval, e.g. ``+1,234 conversions [+210, +2,258]``.

    Examples:
        >>> fmt_impact(1234.0, 210.2, 2258.0, "conversions per 30 days")
        '+1,234 conversions per 30 days [+210, +2,258]'
    """
    if not _finite(value):
        return DASH
    interval = f" [{fmt_signed(low)}, {fmt_signed(high)}]" if _finite(low) or _finite(high) else ""
    return f"{fmt_signed(value)} {unit}{interval}"


def fmt_days(value: float) -> str:
    """A number of days, rounded up (a day not yet complete still has to be waited).

    Examples:
        >>> fmt_days(8.2), fmt_days(0.3), fmt_days(1234.0)
        ('~9', '~1', '~1,234')
    """
    return f"~{math.ceil(value):,}"


# ESC sequences whole (CSI ``ESC [ … final``, OSC ``ESC ] … BEL|ST``, string
# commands, two-byte escapes) and their 8-bit C1 forms, then any single control.
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What rich reads as a tag (rich.markup.escape's pattern; rich is not imported here).
_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")
_VISIBLE = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
# What HTML may not hold as text (C0 but tab, newline, CR; DEL; C1) and bidi overrides.
_PAGE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain_text(value: object) -> str:
    r"""``value`` as one line of text with no terminal control in it.

    Escape sequences (colours, OSC window titles, cursor moves) are removed whole;
    newlines, tabs and carriage returns become visible ``\n``, ``\t``, ``\r``; any
    other control character (C0, DEL, C1, bidi overrides) becomes ``\xNN``.

    Examples:
        >>> plain_text("a\x1b]0;owned\x07b\x1b[2Jc\nd")
        'abc\\nd'
    """
    text = _SEQUENCE.sub("", str(value))
    return _CONTROL.sub(lambda m: _VISIBLE.get(m[0], f"\\x{ord(m[0]):02x}"), text)


def page_text(text: str) -> str:
    r"""``text`` for an HTML page: each control character as visible ``\xNN`` text.

    HTML escaping leaves control characters in place; they are not valid HTML and
    reach a terminal when the page is printed (``cat report.html``). Tabs and line
    breaks stay: they are layout, and the page's own markup holds them.

    Examples:
        >>> page_text("tr\x1b[31meat\x07\n")
        'tr\\x1b[31meat\\x07\n'
    """
    return _PAGE_CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


def terminal_text(value: object) -> str:
    r"""``value`` ready for a rich markup string: :func:`plain_text`, then markup escaped.

    Every name, value or path from the data, the config or the command line
    goes through this before it reaches a console (rich parses ``[...]`` as markup).

    Examples:
        >>> terminal_text("[bold]\x1b[31mred[/]")
        '\\[bold]red\\[/]'
    """
    text = _TAG.sub(lambda m: f"{m[1]}{m[1]}\\{m[2]}", plain_text(value))
    # a lone trailing backslash would escape the markup that follows the text
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text
