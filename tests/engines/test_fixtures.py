"""The engine fixtures start real servers: a query round-trips on each."""

from __future__ import annotations

import pytest

from tests.fixtures.engines import spark_ansi

pytestmark = pytest.mark.engines


def test_spark_session_runs_a_query(spark_session):
    assert spark_session.sql("SELECT 1 + 1 AS two").collect()[0]["two"] == 2
    assert spark_session.conf.get("spark.sql.shuffle.partitions") == "2"
    with spark_ansi(spark_session, on=False):
        assert spark_session.conf.get("spark.sql.ansi.enabled") == "false"


def test_postgres_url_accepts_a_connection(postgres_url):
    import ibis

    con = ibis.connect(postgres_url)
    try:
        assert con.sql("SELECT 1 + 1 AS two").to_pyarrow().column("two").to_pylist() == [2]
    finally:
        con.disconnect()
