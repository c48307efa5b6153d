"""The database work behind /db /queries /fortunes /updates, the same for both apps, with
their query and answer models and the data both find: TechEmpower's `world` (10,000 rows
of id and randomnumber) and `fortune` (12 messages).

Flask runs the sync functions on a ConnectionPool, FastAPI the async ones on an
AsyncConnectionPool (psycopg 3 and psycopg_pool): the same queries, one round trip each,
so that the only difference is sync against async. Each worker has DATABASE_POOL_SIZE
connections; an async pool belongs to one event loop, so an ASGI worker that runs several
(FastAPI under Unit: one per thread) splits them evenly, a pool per loop.

A database that is down or unreachable raises Unavailable within POOL_TIMEOUT_S, as does
a request when there is no database: both apps answer it 503 with a JSON body. The pools
reconnect by themselves when the database returns.
"""

from __future__ import annotations

import contextlib
import html
import random
from collections.abc import AsyncIterator, Iterator

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from pydantic import BaseModel, ConfigDict, Field

from serve.database_config import HOW_TO_GET_POSTGRES, DatabaseConfig

WORLD_ROWS = 10_000
MAX_ROWS = 500  # the most rows one /queries or /updates may ask for
# How long a request waits for a free connection before it is answered 503: while the
# database is down, no connection comes back.
POOL_TIMEOUT_S = 3.0
# A connection the pool lost is made again in the background, with growing pauses
# between attempts, for this long; after that the pool makes one when a request asks.
RECONNECT_TIMEOUT_S = 10.0
CONNECTION = {"autocommit": True, "connect_timeout": int(POOL_TIMEOUT_S)}

SELECT_WORLD = "SELECT id, randomnumber FROM world WHERE id = %s"
UPDATE_WORLD = "UPDATE world SET randomnumber = %s WHERE id = %s"
SELECT_FORTUNES = "SELECT id, message FROM fortune"

NO_DATABASE = (
    f"no database: up.sh starts PostgreSQL where its server is installed; {HOW_TO_GET_POSTGRES}"
)
UNAVAILABLE = "database unavailable"


class Unavailable(Exception):
    """The database cannot answer now (down, unreachable, or no connection free within
    POOL_TIMEOUT_S), or there is none: both apps answer 503, with this as the detail."""


class World(BaseModel):
    id: int
    randomNumber: int  # TechEmpower's name in the answer


class RowsQuery(BaseModel):
    """The query of /queries and /updates."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(1, ge=1, le=MAX_ROWS, description="rows to read, one query each")


def random_id() -> int:
    return random.randint(1, WORLD_ROWS)


# The one template of /fortunes, with every message escaped.
FORTUNES_PAGE = (
    "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
    "<tr><th>id</th><th>message</th></tr>{rows}</table></body></html>"
)
FORTUNE_ROW = "<tr><td>{}</td><td>{}</td></tr>"
ADDED_FORTUNE = (0, "Additional fortune added at request time.")


def fortunes_page(rows: list[tuple[int, str]]) -> str:
    """The page of /fortunes: the rows and ADDED_FORTUNE, sorted by message, escaped."""
    fortunes = sorted([*rows, ADDED_FORTUNE], key=lambda fortune: fortune[1])
    return FORTUNES_PAGE.format(
        rows="".join(FORTUNE_ROW.format(id_, html.escape(message)) for id_, message in fortunes)
    )


def new_numbers(worlds: list[World]) -> list[tuple[int, int]]:
    """Each world's new randomNumber and id, as UPDATE_WORLD takes them, in the order of
    the ids: concurrent updates that lock rows in one order cannot deadlock."""
    return sorted(((world.randomNumber, world.id) for world in worlds), key=lambda p: p[1])


def pool_options(url: str, size: int) -> dict:
    """The settings of every pool, sync or async: `size` connections, kept open."""
    return {
        "conninfo": url,
        "min_size": size,
        "max_size": size,
        "timeout": POOL_TIMEOUT_S,
        "reconnect_timeout": RECONNECT_TIMEOUT_S,
        "kwargs": CONNECTION,
    }


# Flask's side: a ConnectionPool per worker, shared by its threads.


def connection_pool() -> ConnectionPool | None:
    """This worker's pool (None without a database), connecting in the background."""
    config = DatabaseConfig.from_env()
    if config.url is None:
        return None
    return ConnectionPool(**pool_options(config.url, config.pool_size), open=True)


@contextlib.contextmanager
def connection(pool: ConnectionPool | None) -> Iterator[psycopg.Connection]:
    """A connection of the pool, any failure to reach the database raised as Unavailable."""
    if pool is None:
        raise Unavailable(NO_DATABASE)
    try:
        with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as error:
        # An outage breaks every idle connection too, each found only when next used:
        # replace them now (in the background), not at the cost of one 503 each later.
        pool.check()
        raise Unavailable(UNAVAILABLE) from error


def one_world(pool: ConnectionPool | None) -> World:
    with connection(pool) as conn:
        id_, number = conn.execute(SELECT_WORLD, (random_id(),)).fetchone()
    return World(id=id_, randomNumber=number)


def some_worlds(pool: ConnectionPool | None, n: int) -> list[World]:
    worlds = []
    with connection(pool) as conn:
        cursor = conn.cursor()
        for _ in range(n):
            id_, number = cursor.execute(SELECT_WORLD, (random_id(),)).fetchone()
            worlds.append(World(id=id_, randomNumber=number))
    return worlds


def fortunes(pool: ConnectionPool | None) -> str:
    with connection(pool) as conn:
        rows = conn.execute(SELECT_FORTUNES).fetchall()
    return fortunes_page(rows)


def updated_worlds(pool: ConnectionPool | None, n: int) -> list[World]:
    worlds = []
    with connection(pool) as conn:
        cursor = conn.cursor()
        for _ in range(n):
            id_, _ = cursor.execute(SELECT_WORLD, (random_id(),)).fetchone()
            worlds.append(World(id=id_, randomNumber=random_id()))
        with conn.transaction():
            cursor.executemany(UPDATE_WORLD, new_numbers(worlds))
    return worlds


# FastAPI's side: an AsyncConnectionPool per event loop, made in the app's lifespan (which
# runs once per loop), each with the loop's share of the worker's connections.


@contextlib.asynccontextmanager
async def event_loop_pool() -> AsyncIterator[AsyncConnectionPool | None]:
    """This event loop's pool (None without a database), open for the block, connecting
    in the background."""
    config = DatabaseConfig.from_env()
    if config.url is None:
        yield None
        return
    options = pool_options(config.url, config.pool_size_per_loop)
    async with AsyncConnectionPool(**options, open=False) as pool:
        yield pool


@contextlib.asynccontextmanager
async def async_connection(
    pool: AsyncConnectionPool | None,
) -> AsyncIterator[psycopg.AsyncConnection]:
    """connection(), for an async pool."""
    if pool is None:
        raise Unavailable(NO_DATABASE)
    try:
        async with pool.connection() as conn:
            yield conn
    except psycopg.OperationalError as error:
        await pool.check()  # as connection() does
        raise Unavailable(UNAVAILABLE) from error


async def one_world_async(pool: AsyncConnectionPool | None) -> World:
    async with async_connection(pool) as conn:
        cursor = await conn.execute(SELECT_WORLD, (random_id(),))
        id_, number = await cursor.fetchone()
    return World(id=id_, randomNumber=number)


async def some_worlds_async(pool: AsyncConnectionPool | None, n: int) -> list[World]:
    worlds = []
    async with async_connection(pool) as conn:
        cursor = conn.cursor()
        for _ in range(n):
            await cursor.execute(SELECT_WORLD, (random_id(),))
            id_, number = await cursor.fetchone()
            worlds.append(World(id=id_, randomNumber=number))
    return worlds


async def fortunes_async(pool: AsyncConnectionPool | None) -> str:
    async with async_connection(pool) as conn:
        cursor = await conn.execute(SELECT_FORTUNES)
        rows = await cursor.fetchall()
    return fortunes_page(rows)


async def updated_worlds_async(pool: AsyncConnectionPool | None, n: int) -> list[World]:
    worlds = []
    async with async_connection(pool) as conn:
        cursor = conn.cursor()
        for _ in range(n):
            await cursor.execute(SELECT_WORLD, (random_id(),))
            id_, _ = await cursor.fetchone()
            worlds.append(World(id=id_, randomNumber=random_id()))
        async with conn.transaction():
            await cursor.executemany(UPDATE_WORLD, new_numbers(worlds))
    return worlds


# The data, made at start-up where missing (serve.postgres): the same for both apps.

FORTUNES = (
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
)
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS world (id integer PRIMARY KEY, randomnumber integer NOT NULL)",
    "INSERT INTO world (id, randomnumber)"
    f" SELECT id, floor(random() * {WORLD_ROWS} + 1) FROM generate_series(1, {WORLD_ROWS}) AS id"
    " ON CONFLICT DO NOTHING",
    "CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL)",
)
INSERT_FORTUNE = "INSERT INTO fortune (id, message) VALUES (%s, %s) ON CONFLICT DO NOTHING"
CHECK_WORLD = "SELECT count(*), min(id), max(id), min(randomnumber), max(randomnumber) FROM world"


def data_problem(conninfo: str) -> str | None:
    """Make the tables and their rows where missing, then say what, if anything, is not as
    TechEmpower's rules have it: WORLD_ROWS worlds numbered from 1 with numbers from 1 to
    WORLD_ROWS, and the FORTUNES."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        conn.cursor().executemany(INSERT_FORTUNE, FORTUNES)
        count, low, high, smallest, largest = conn.execute(CHECK_WORLD).fetchone()
        found = conn.execute(SELECT_FORTUNES + " ORDER BY id").fetchall()
        conn.execute("ANALYZE world, fortune")
    if (count, low, high) != (WORLD_ROWS, 1, WORLD_ROWS) or smallest < 1 or largest > WORLD_ROWS:
        return (
            f"its table world has {count} rows with ids {low}-{high} and numbers"
            f" {smallest}-{largest}, not {WORLD_ROWS:,} with both from 1 to {WORLD_ROWS}"
        )
    if tuple(found) != FORTUNES:
        return f"its table fortune holds {len(found)} other rows than TechEmpower's 12 fortunes"
    return None
