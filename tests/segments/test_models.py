import datetime as dt
import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from experiment.errors import DataError, RuleError
from segments import fit_models, load_models, load_segments, membership
from segments.clusters import ClusterModel, assign_clusters, fit_clusters, silhouette
from segments.predictive import PredictModel, auc, linear_score

AS_OF = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)

SEGMENTS = """\
segments:
  - name: taste
    cluster: {features: [spend, visits, discount_share], k: auto, k_max: 4, seed: 3}
  - name: churn
    predict:
      target: "lapsed == 1"
      features: [visits, spend]
      bands: {top_decile: [0.9, 1.0], low_half: [0.0, 0.5]}
"""


def _customers(n: int = 3000, rng: int = 11) -> pa.Table:
    gen = np.random.default_rng(rng)
    group = gen.choice(3, n, p=[0.5, 0.3, 0.2])
    spend = np.exp(gen.normal(0, 0.3, n) + np.array([1.0, 4.0, 7.0])[group])
    visits = gen.poisson(np.array([2, 8, 20])[group])
    discount = np.clip(gen.normal(np.array([0.6, 0.3, 0.1])[group], 0.08), 0, 1)
    lapse_p = 1 / (1 + np.exp(-(1.0 - 0.25 * visits)))
    return pa.table(
        {
            "user_id": [f"u{i:05d}" for i in range(n)],
            "spend": spend,
            "visits": visits,
            "discount_share": discount,
            "lapsed": (gen.random(n) < lapse_p).astype(np.int64),
        }
    )


def _dataset(folder, table):
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "customers.parquet")
    (folder / "segments.yaml").write_text(SEGMENTS)
    return folder


@pytest.mark.slow
def test_cluster_and_predictive_membership_reproduce_across_runs_and_copies(tmp_path):
    table = _customers()
    first = _dataset(tmp_path / "a", table)
    seg = load_segments(first / "segments.yaml")
    run1 = membership(table, seg, as_of=AS_OF)  # fits and writes the sidecar
    sidecar = first / "segments.models.json"
    assert sidecar.is_file()
    saved = sidecar.read_text()
    run2 = membership(
        pq.read_table(first / "customers.parquet"),
        load_segments(first / "segments.yaml"),
        as_of=AS_OF,
    )
    assert sidecar.read_text() == saved  # reused, not refitted
    # a fresh copy of the data and of the segments file, fitted from scratch
    fresh = tmp_path / "b"
    fresh.mkdir()
    shutil.copy(first / "customers.parquet", fresh / "customers.parquet")
    shutil.copy(first / "segments.yaml", fresh / "segments.yaml")
    run3 = membership(
        pq.read_table(fresh / "customers.parquet"),
        load_segments(fresh / "segments.yaml"),
        as_of=AS_OF,
    )
    assert list(run1) == list(run2) == list(run3)
    for name in run1:
        np.testing.assert_array_equal(run1[name], run2[name], err_msg=name)
        np.testing.assert_array_equal(run1[name], run3[name], err_msg=name)
    doc1, doc3 = json.loads(saved), json.loads((fresh / "segments.models.json").read_text())
    assert doc1["models"] == doc3["models"]
    # the planted three groups are found, named by a distinctive feature, and partition users
    clusters = [n for n in run1 if n.startswith("taste_")]
    assert len(clusters) == 3
    assert all(("high_" in n) or ("low_" in n) for n in clusters)
    assert (np.stack([run1[n] for n in clusters]).sum(axis=0) == 1).all()
    assert doc1["models"]["taste"]["params"]["criterion"] == "silhouette"
    # the top decile by score is about a tenth, and the held-out AUC is reported and good
    assert abs(run1["churn_top_decile"].mean() - 0.1) < 0.02
    assert doc1["models"]["churn"]["params"]["auc"] > 0.7


def test_engine_membership_equals_numpy_scoring_of_the_saved_models(tmp_path):
    table = _customers()
    folder = _dataset(tmp_path, table)
    seg = load_segments(folder / "segments.yaml")
    got = membership(table, seg, as_of=AS_OF)
    models = {name: model for name, (_, model) in load_models(seg).items()}
    cl, pm = models["taste"], models["churn"]
    assert isinstance(cl, ClusterModel)
    assert isinstance(pm, PredictModel)
    df = table.to_pandas()
    label = assign_clusters(cl, df[list(cl.features)].to_numpy(float))
    for i, name in enumerate(cl.labels):
        np.testing.assert_array_equal(got[f"taste_{name}"], label == i)
    score = linear_score(pm, df[list(pm.features)].to_numpy(float))
    low, _ = pm.bands["top_decile"]
    assert low is not None
    np.testing.assert_array_equal(got["churn_top_decile"], score >= low)


def test_changed_spec_is_refitted_and_missing_model_can_be_required(tmp_path):
    from segments import compile_segments

    table = _customers(800)
    folder = _dataset(tmp_path, table)
    seg = load_segments(folder / "segments.yaml")
    import ibis

    con = ibis.duckdb.connect()
    t = con.create_table("c", table)
    with pytest.raises(RuleError, match="run `exp segments fit`"):
        compile_segments(seg, t, fit_missing=False)
    fitted = fit_models(seg, t, as_of=AS_OF)
    assert set(fitted) == {"taste", "churn"}
    assert set(compile_segments(seg, t, fit_missing=False)) >= {"churn_top_decile"}
    (folder / "segments.yaml").write_text(SEGMENTS.replace("seed: 3", "seed: 4"))
    changed = load_segments(folder / "segments.yaml")
    with pytest.raises(RuleError, match="no up-to-date fitted model"):
        compile_segments(changed, t, fit_missing=False)
    con.disconnect()


def test_model_errors_are_one_line(tmp_path):
    table = _customers(300).append_column("name", pa.array(["x"] * 300))
    folder = _dataset(tmp_path, table)
    bad = SEGMENTS.replace("[spend, visits, discount_share]", "[spend, name]")
    (folder / "segments.yaml").write_text(bad)
    with pytest.raises(RuleError, match="segment 'taste': feature 'name' is string"):
        membership(table, load_segments(folder / "segments.yaml"))
    (folder / "segments.yaml").write_text(SEGMENTS.replace("lapsed == 1", "lapsed == 7"))
    with pytest.raises(DataError, match="segment 'churn': the target is the same"):
        membership(table, load_segments(folder / "segments.yaml"))


def test_silhouette_and_auc_match_references():
    from scipy.stats import mannwhitneyu

    gen = np.random.default_rng(0)
    x = np.vstack([gen.normal(0, 1, (60, 2)), gen.normal(5, 1, (40, 2))])
    label = np.r_[np.zeros(60, int), np.ones(40, int)]
    # reference: direct per-point loop
    from scipy.spatial.distance import cdist

    d = cdist(x, x)
    s = []
    for i in range(len(x)):
        own = label == label[i]
        a = d[i, own].sum() / (own.sum() - 1)
        b = d[i, ~own].mean()
        s.append((b - a) / max(a, b))
    assert silhouette(x, label) == pytest.approx(np.mean(s), rel=1e-12)
    y = gen.random(200) < 0.3
    score = gen.normal(size=200) + y
    u = mannwhitneyu(score[y], score[~y]).statistic
    assert auc(score, y) == pytest.approx(u / (y.sum() * (~y).sum()), rel=1e-12)


def test_fit_clusters_fixed_k_is_deterministic():
    gen = np.random.default_rng(1)
    x = gen.normal(size=(500, 3))
    a = fit_clusters(x, ("a", "b", "c"), k=4, k_max=8, seed=9)
    b = fit_clusters(x, ("a", "b", "c"), k=4, k_max=8, seed=9)
    assert a == b
    assert a.k == 4
    assert a.criterion == "fixed"
