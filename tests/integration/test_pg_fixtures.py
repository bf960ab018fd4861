"""The server fixtures themselves: a fresh PostgreSQL database per test, a PostgreSQL server that comes back
after a restart, a Redis that forgets everything when restarted with its data lost."""

from __future__ import annotations

import os

import psycopg
import pytest
import redis
import sqlalchemy as sa

SEEN: dict[str, str] = {}


def tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        return sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("turn", ["first", "second"])
def test_each_test_gets_its_own_empty_database(pg_url, turn):
    assert pg_url.startswith("postgresql+psycopg://")
    assert tables(pg_url) == []
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE marker (turn text)"))
            conn.execute(sa.text("INSERT INTO marker VALUES (:t)"), {"t": turn})
            name = conn.execute(sa.text("SELECT current_database()")).scalar_one()
    finally:
        engine.dispose()
    assert name.startswith("probe_test_")
    SEEN[turn] = name
    if len(SEEN) == 2:
        assert SEEN["first"] != SEEN["second"]


def test_the_database_of_a_finished_test_is_dropped(pg_server):
    if len(SEEN) < 2:
        pytest.skip("runs after the two database tests")
    with pg_server.connect(autocommit=True) as conn:
        left = conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (list(SEEN.values()),))
        assert left.fetchall() == []


def test_a_new_connection_works_after_a_restart(pg_server, pg_url):
    engine = sa.create_engine(pg_url, pool_pre_ping=True)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE kept (n int)"))
            conn.execute(sa.text("INSERT INTO kept VALUES (7)"))
        old = psycopg.connect(pg_server.conninfo(pg_url.rsplit("/", 1)[1]), autocommit=True)
        before = old.execute("SELECT pg_postmaster_start_time()").fetchone()[0]

        pg_server.restart()

        with pytest.raises(psycopg.OperationalError):  # the restart cut the connection open across it
            old.execute("SELECT 1")
        old.close()
        with engine.begin() as conn:  # the pool throws away its dead connection and opens a new one
            assert conn.execute(sa.text("SELECT n FROM kept")).scalar_one() == 7
            after = conn.execute(sa.text("SELECT pg_postmaster_start_time()")).scalar_one()
        assert after > before
    finally:
        engine.dispose()


def test_a_stopped_server_refuses_then_serves_again(pg_server, pg_url):
    pg_server.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_server.conninfo(), connect_timeout=2).close()
    finally:
        pg_server.start()
    assert tables(pg_url) == []


def test_db_url_gives_each_store(db_url):
    engine = sa.create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (n int)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            assert conn.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        engine.dispose()
    assert db_url.split(":", 1)[0] in ("sqlite", "postgresql+psycopg")


def test_redis_restart_with_lost_data_forgets_keys(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.set("probe:key", "v")
    assert client.get("probe:key") == b"v"
    pid = redis_server.pid

    redis_server.restart(lose_data=True)

    assert redis_server.pid != pid
    client = redis.Redis.from_url(redis_server.url)  # same URL, same port
    assert client.get("probe:key") is None
    assert client.dbsize() == 0
    client.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_redis_restart_keeping_data_keeps_keys(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    client.set("probe:key", "v")
    redis_server.restart(lose_data=False)
    client = redis.Redis.from_url(redis_server.url)
    assert client.get("probe:key") == b"v"
    client.close()
