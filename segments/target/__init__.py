"""``exp target``: a rollout policy learned on one half of the users, valued on the other.

The same hashed halves as ``exp refine``: the learner sees only the discovery
half; the policy's value per 1,000 customers (against treat-all and treat-none,
for the primary metric and the guardrails) comes from the estimation half.
See :func:`segments.target.core.target`.
"""

from segments.target.core import target

__all__ = ["target"]
