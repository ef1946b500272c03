"""Every arm needs users in both halves of a split sample: the check refine and target share.

``exp refine`` and ``exp target`` split the users into two halves (one to search, one
to estimate); a half in which an arm has fewer than two users gives that arm's mean
no variance, so neither command could say anything about it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from experiment.errors import DataError

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["check_users_per_half"]


def check_users_per_half(
    counts: Iterable[tuple[str, str, float]], *, command: str, purpose: str
) -> None:
    """Every ``(arm, half, users)`` of ``counts`` has two users or more (``nan``: none).

    Raises:
        DataError: names the first arm and half short of users, the command and what
            it needs them for (``purpose``).
    """
    for arm, half, n in counts:
        if not n >= 2:
            raise DataError(
                f"assignments: arm {arm!r} has {n:,.0f} user(s) in the {half} half; "
                f"{command} needs at least 2 per arm in each half (about 4 in all) to {purpose}"
            )
