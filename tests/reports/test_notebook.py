from dataclasses import replace

from tests.fixtures.results import make_many, make_results

EVIL = "<script>alert(1)</script>"


def test_results_to_pandas_one_row_per_result_with_method_columns():
    results = make_many(n_segments=3, n_metrics=2)
    frame = results.to_pandas()
    assert len(frame) == len(results.results) == 8
    assert {"chance_to_win", "seq_p_value", "underpowered"} <= set(frame.columns)
    assert frame.loc[0, "segment"] == "all"


def test_results_repr_html_escapes_and_flags_srm():
    results = make_results(segment=EVIL)
    flagged = replace(results, srm=replace(results.srm, flag=True))
    page = flagged._repr_html_()
    assert "<script" not in page
    assert "&lt;script&gt;" in page
    assert "MISMATCH" in page
    assert "MISMATCH" not in results._repr_html_()
