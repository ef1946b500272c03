"""Argument checks for the public stats functions: validate once, return the value.

References:
    tea-tasting's ``check_scalar``, the pattern followed here:
    https://github.com/e10v/tea-tasting/blob/main/src/tea_tasting/utils/checks.py
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from experiment.sums import JointSums, MeanSums

_S = TypeVar("_S", bound=str)
_Sums = TypeVar("_Sums", MeanSums, JointSums)


def check_scalar(value: object, name: str, *, gt: float, lt: float) -> float:
    """Return ``value`` as a float after checking ``gt < value < lt``.

    Args:
        value: The argument as the caller passed it.
        name: The parameter name, for the message.
        gt: Exclusive lower bound.
        lt: Exclusive upper bound.

    Returns:
        ``value`` as a Python float.

    Raises:
        TypeError: ``value`` is not a real number (``bool`` is refused too).
        ValueError: ``value`` is not strictly between the bounds (``nan`` included).

    Examples:
        >>> check_scalar(0.05, "alpha", gt=0, lt=1)
        0.05
        >>> check_scalar(1.5, "alpha", gt=0, lt=1)
        Traceback (most recent call last):
        ...
        ValueError: alpha == 1.5, must be > 0 and < 1.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be an instance of float.")
    number = float(value)
    if not gt < number < lt:
        raise ValueError(f"{name} == {number}, must be > {gt:g} and < {lt:g}.")
    return number


def check_choice(value: _S, name: str, choices: tuple[_S, ...]) -> _S:
    """Return ``value`` after checking that it is one of ``choices``.

    Args:
        value: The argument as the caller passed it.
        name: The parameter name, for the message.
        choices: The valid values.

    Returns:
        ``value`` unchanged.

    Raises:
        ValueError: ``value`` is not one of ``choices``.

    Examples:
        >>> check_choice("less", "alternative", ("two-sided", "greater", "less"))
        'less'
    """
    if value not in choices:
        valid = ", ".join(repr(choice) for choice in choices)
        raise ValueError(f"{name} == {value!r}, must be one of {valid}.")
    return value


def check_arms(control: _Sums, treatment: _Sums, typ: type[_Sums]) -> tuple[_Sums, _Sums]:
    """Return both arms after checking their type and that their cells line up.

    Args:
        control: Sums of the control arm, one element per cell.
        treatment: Sums of the treatment arm, one element per cell.
        typ: The sums class both arms must be.

    Returns:
        ``(control, treatment)`` unchanged.

    Raises:
        TypeError: An arm is not an instance of ``typ``.
        ValueError: The arms have different shapes.

    Examples:
        >>> arm = MeanSums(n=[10, 20], mean=[1.0, 2.0], m2=[9.0, 19.0])
        >>> check_arms(arm, arm, MeanSums)[0] is arm
        True
    """
    for name, arm in (("control", control), ("treatment", treatment)):
        if not isinstance(arm, typ):
            raise TypeError(f"{name} must be an instance of {typ.__name__}.")
    if control.n.shape != treatment.n.shape:
        raise ValueError(
            "Both `control` and `treatment` hold one element per cell, so they must have the "
            f"same shape; got {control.n.shape} and {treatment.n.shape}."
        )
    return control, treatment
