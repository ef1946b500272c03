import hashlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from experiment.assignment import assign, assign_many, bucket

ARMS = {"control": 0.5, "treatment": 0.5}


def test_bucket_matches_independent_md5_definition():
    digest = hashlib.md5(b"salt:user-42").digest()
    assert bucket("user-42", salt="salt") == int.from_bytes(digest[:4], "big") / 2**32


@given(user=st.text(max_size=40), salt=st.text(max_size=20))
def test_assign_is_deterministic_and_agrees_with_assign_many(user, salt):
    arm = assign(user, salt=salt, arms=ARMS)
    assert arm == assign(user, salt=salt, arms=ARMS)
    assert assign_many([user], salt=salt, arms=ARMS)[0] == arm


def test_assign_many_shares_follow_weights():
    arms = {"control": 0.2, "a": 0.3, "b": 0.5}
    got = assign_many((f"u{i}" for i in range(100_000)), salt="s", arms=arms)
    counts = np.array([(got == a).sum() for a in arms])
    expected = np.array(list(arms.values())) * counts.sum()
    assert stats.chisquare(counts, expected).pvalue > 0.001


def test_assign_rejects_bad_weights():
    with pytest.raises(ValueError, match="weight > 0"):
        assign("u", salt="s", arms={"a": 1.0, "b": 0.0})
