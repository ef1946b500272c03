"""``exp refine``: propose better segment definitions from held-out lift evidence.

The users are split by hash into a discovery half, on which every candidate
refinement is searched, and an estimation half, on which the chosen ones are
measured and tested. See :func:`segments.refine.core.refine`.
"""

from segments.refine.core import refine

__all__ = ["refine"]
