r"""The Jinja2 environment of the HTML reports: escaping, strict names, a bytecode cache.

Every value a template prints is HTML-escaped (autoescape) and has its control
characters shown as ``\xNN`` text (:func:`reports.format.page_text`), which
escaping alone leaves in place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from reports.format import page_text

if TYPE_CHECKING:
    import jinja2

__all__ = ["environment"]


def environment() -> jinja2.Environment:
    """Jinja2 with autoescaping and strict undefined names, templates from the package.

    Compiling report.html costs about 0.05 s of CPU on every run; Jinja2's bytecode
    cache (its per-user folder in the system temp folder) keeps the compiled
    template between runs, and is skipped when that folder cannot be used.
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        bytecode_cache=_bytecode_cache(),
        finalize=_without_controls,
    )
    env.filters["breakable"] = _breakable
    return env


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja2's file cache of compiled templates, failing silently (a cache only)."""
    import contextlib

    import jinja2

    class _Cache(jinja2.FileSystemBytecodeCache):
        def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
            with contextlib.suppress(OSError):
                super().dump_bytecode(bucket)

    try:
        # the compiled code depends on the environment's options (finalize), not only on
        # the template's source: a new name for every change of them
        return _Cache(pattern="__seglift_page_text_%s.cache")
    except (OSError, RuntimeError):  # no temp folder, or one another user owns
        return None


def _without_controls(value: object) -> object:
    """A printed value with its control characters shown as text; markup stays markup.

    Jinja2 calls it for every value a template prints: its imports sit at the top of
    the module (loaded with Jinja2 for a report anyway), not in this call.
    """
    if isinstance(value, Markup):  # our own markup (charts): removing characters opens no tag
        return Markup(page_text(value))  # noqa: S704
    return page_text(value) if isinstance(value, str) else value


def _breakable(text: str) -> Markup:
    """Escaped text that may wrap after an underscore (long snake_case names in narrow cells)."""
    return escape(text).replace("_", Markup("_<wbr>"))
