"""The database routes against a real PostgreSQL: the one up.sh starts, or a cluster of the
test's own named by DATABASE_URL; its data, its processes in /status, its stop after the
apps' drain, and both apps' answers while it is down and once it is back.

These skip, saying why, where PostgreSQL's server is not installed (.ci/run installs it).
"""

import html
import os
import shutil
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import psutil
import psycopg
import pytest
from conftest import needs_postgres, postgres_cluster, serve
from test_serve import run_up

import database
from metrics import database as database_metrics
from serve.settings import DATABASE_POOL_SIZE

pytestmark = needs_postgres

APPS = ("flask", "fastapi")
BACKEND_TITLE = "postgres: benchmarkdbuser hello_world"


@pytest.fixture(scope="module")
def cluster():
    """A cluster of this module's own: what DATABASE_URL names in these tests."""
    with postgres_cluster() as found:
        yield found


@pytest.fixture(scope="module")
def served_on_url(cluster, tmp_path_factory):
    """Both apps against the module's cluster, named by DATABASE_URL."""
    served = serve(tmp_path_factory.mktemp("url") / "up.log", DATABASE_URL=cluster[1])
    yield served
    served.stop()


@pytest.fixture(scope="module")
def served_with_its_own(tmp_path_factory):
    """Both apps, with the PostgreSQL that up.sh starts (one worker, pools of 3)."""
    served = serve(
        tmp_path_factory.mktemp("own") / "up.log", DATABASE="postgres", DATABASE_POOL_SIZE="3"
    )
    yield served
    served.stop()


def get(url: str, path: str, timeout_s: float = 30) -> httpx2.Response:
    return httpx2.get(url + path, timeout=timeout_s)


def backends(served) -> list[psutil.Process]:
    """The apps' connections: the backends of the database /status reports."""
    pids = get(served.urls["flask"], "/status").json()["database"]["pids"]
    found = []
    for pid in pids[1:]:
        try:
            if " ".join(psutil.Process(pid).cmdline()).startswith(BACKEND_TITLE):
                found.append(pid)
        except psutil.NoSuchProcess:
            continue
    return found


def expected_fortunes() -> bytes:
    """The page /fortunes must give, written out here independently of database.py."""
    rows = [*database.FORTUNES, (0, "Additional fortune added at request time.")]
    cells = "".join(
        f"<tr><td>{id_}</td><td>{html.escape(message)}</td></tr>"
        for id_, message in sorted(rows, key=lambda row: row[1])
    )
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    ).encode()


def test_the_data_follows_techempowers_rules(cluster):
    with psycopg.connect(cluster[1]) as conn:
        count, low, high, smallest, largest = conn.execute(database.CHECK_WORLD).fetchone()
        fortunes = conn.execute("SELECT id, message FROM fortune ORDER BY id").fetchall()
    assert (count, low, high) == (10_000, 1, 10_000)
    assert smallest >= 1 and largest <= 10_000
    assert len(fortunes) == 12
    assert fortunes[10] == (
        11,
        '<script>alert("This should not be displayed in a browser alert box.");</script>',
    )
    assert fortunes[11] == (12, "フレームワークのベンチマーク")
    assert database.data_problem(cluster[1]) is None  # made again: nothing changes


def test_a_database_with_other_rows_is_refused_in_one_line():
    with postgres_cluster() as (_, url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO world VALUES (10001, 5)")
        result = run_up(DATABASE_URL=url)
    assert result.returncode == 1
    said = result.stderr.splitlines()[-1]
    assert said.startswith("up.sh: DATABASE_URL: its table world has 10001 rows with ids 1-10001")
    assert said.endswith(", not 10,000 with both from 1 to 10000")
    assert "serves Flask" not in result.stdout


def test_a_database_url_that_answers_nothing_is_refused_in_one_line(tmp_path):
    result = run_up(DATABASE_URL=f"host={tmp_path} port=5432 dbname=hello_world")
    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if line.startswith("up.sh:")]
    assert line.startswith("up.sh: DATABASE_URL: ")
    assert f'on socket "{tmp_path}/.s.PGSQL.5432" failed: No such file or directory' in line


@pytest.mark.parametrize("app", APPS)
def test_db_and_queries_answer_rows_of_world(served_on_url, cluster, app):
    url = served_on_url.urls[app]
    one = get(url, "/db")
    assert one.status_code == 200 and list(one.json()) == ["id", "randomNumber"]
    rows = get(url, "/queries?n=20").json()
    assert len(rows) == 20 and get(url, "/queries").json().__len__() == 1
    with psycopg.connect(cluster[1]) as conn:
        for row in [one.json(), *rows]:
            assert 1 <= row["id"] <= 10_000 and 1 <= row["randomNumber"] <= 10_000
            stored = conn.execute(database.SELECT_WORLD, (row["id"],)).fetchone()
            assert stored == (row["id"], row["randomNumber"])  # nothing updates meanwhile


@pytest.mark.parametrize("app", APPS)
def test_updates_write_back_the_numbers_they_answer(served_on_url, cluster, app):
    rows = get(served_on_url.urls[app], "/updates?n=50").json()
    assert len(rows) == 50
    # An id drawn twice is written in the order drawn: the last number answered stays.
    answered = {row["id"]: row["randomNumber"] for row in rows}
    with psycopg.connect(cluster[1]) as conn:
        for id_, number in answered.items():
            assert conn.execute(database.SELECT_WORLD, (id_,)).fetchone() == (id_, number)


def test_both_apps_render_the_same_fortunes_page_escaped_and_sorted(served_on_url):
    pages = {app: get(served_on_url.urls[app], "/fortunes") for app in APPS}
    for page in pages.values():
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.content == expected_fortunes()
    assert b"<script>" not in pages["flask"].content
    assert pages["flask"].content.count(b"<tr>") == 14  # the header and 13 fortunes


def test_status_reports_the_pool_and_leaves_databases_url_uncounted(served_on_url):
    for app in APPS:
        block = get(served_on_url.urls[app], "/status").json()["database"]
        assert block == {
            "counted": False,
            "pool_size": 4,  # conf.json's
            "pools": 1,  # granian runs one event loop per worker
            "processes": None,
            "pids": [],
            "cpu_time_s": None,
            "rss_mb": None,
            "pss_mb": None,
        }


def serving_line(served) -> str:
    """up.sh's line that it serves, once written: it may come a moment after both answer."""
    deadline = time.monotonic() + 30
    while True:
        for line in served.log.read_text().splitlines():
            if " serves Flask on " in line:
                return line
        assert time.monotonic() < deadline, served.log.read_text()
        time.sleep(0.1)


def test_up_sh_starts_postgresql_and_both_apps_keep_their_pools_in_it(served_with_its_own):
    served = served_with_its_own
    said = serving_line(served)
    assert "database: PostgreSQL started here as " in said
    assert "3 connection(s) per worker" in said
    for app in APPS:
        assert get(served.urls[app], "/db").status_code == 200
    # One worker each, a pool of 3 each: six backends, however many requests ran.
    deadline = time.monotonic() + 30
    while len(backends(served)) != 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(backends(served)) == 6


def test_status_counts_the_processes_of_the_postgresql_beside_the_apps(served_with_its_own):
    served = served_with_its_own
    before = {app: get(served.urls[app], "/status").json()["database"] for app in APPS}
    assert before["flask"]["pids"][0] == before["fastapi"]["pids"][0]  # one server, shared
    block = before["flask"]
    postmaster = psutil.Process(block["pids"][0])
    assert "-D" in postmaster.cmdline() and Path(postmaster.exe()).name == "postgres"
    children = {child.pid for child in postmaster.children()}
    assert set(block["pids"][1:]) <= children and block["processes"] == len(block["pids"])
    assert block["counted"] and block["pool_size"] == 3 and block["pools"] == 1
    assert block["rss_mb"] > 0
    if os.getuid() == 0 or postmaster.uids().real == os.getuid():  # the kernel shows PSS
        assert 0 < block["pss_mb"] <= block["rss_mb"]
    for _ in range(100):
        assert get(served.urls["fastapi"], "/queries?n=20").status_code == 200
    after = get(served.urls["fastapi"], "/status").json()["database"]
    assert after["cpu_time_s"] > block["cpu_time_s"]


def test_metrics_count_a_postgresql_from_its_lock_file(monkeypatch):
    with postgres_cluster() as (cluster, url):
        lock = cluster.sockets / ".s.PGSQL.5432.lock"
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("DATABASE_LOCK_FILE", str(lock))
        monkeypatch.setenv(DATABASE_POOL_SIZE.name, "2")
        database_metrics.database_config.cache_clear()
        try:
            figures = database_metrics.database_figures()
        finally:
            database_metrics.database_config.cache_clear()
        assert figures.counted and figures.pool_size == 2
        assert figures.pids[0] == int(lock.read_text().split()[0]) == cluster.processes[0].pid
        # The postmaster and its background processes: checkpointer, background writer,
        # WAL writer, autovacuum launcher, logical replication launcher.
        assert figures.processes >= 6 and figures.cpu_time_s > 0
    database_metrics.database_config.cache_clear()
    monkeypatch.setenv(DATABASE_POOL_SIZE.name, "2")
    assert database_metrics.database_figures().cpu_time_s is None  # the server is gone
    database_metrics.database_config.cache_clear()


def postmaster_of(served) -> psutil.Process:
    return psutil.Process(get(served.urls["flask"], "/status").json()["database"]["pids"][0])


def url_of(postmaster: psutil.Process) -> str:
    """The DATABASE_URL of the cluster up.sh started, from its postmaster's command line."""
    setting = next(arg for arg in postmaster.cmdline() if arg.startswith("unix_socket_directories"))
    return f"host={setting.partition('=')[2]} dbname=hello_world user=benchmarkdbuser"


def sent(url: str, path: str) -> socket.socket:
    """A connection to url with a GET of path written on it, its answer left to read."""
    host, port = url.removeprefix("http://").split(":")
    connection = socket.create_connection((host, int(port)), timeout=60)
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    return connection


def status_read(connection: socket.socket) -> tuple[int | None, float]:
    """The status of the answer on `connection` (None: none came), and when it ended."""
    with connection:
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    status = int(received.split(b" ", 2)[1]) if received.startswith(b"HTTP/1.1 ") else None
    return status, time.monotonic()


def test_a_stop_drains_the_apps_before_it_stops_postgresql(tmp_path):
    served = serve(tmp_path / "up.log", DATABASE="postgres")
    postmaster = postmaster_of(served)
    state = Path(postmaster.cmdline()[postmaster.cmdline().index("-D") + 1]).parent
    # Long requests, four times as many as each app has threads or connections: some run,
    # the rest queue.
    connections = [sent(served.urls[APPS[i % 2]], "/updates?n=500") for i in range(32)]
    with ThreadPoolExecutor(len(connections)) as pool:
        reading = [pool.submit(status_read, connection) for connection in connections]
        with psycopg.connect(url_of(postmaster)) as watcher:
            deadline = time.monotonic() + 30
            busy = "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND state = 'active'"
            while not watcher.execute(busy, ("benchmarkdbuser",)).fetchone()[0]:
                assert time.monotonic() < deadline, "the apps never queried the database"
                time.sleep(0.05)
        time.sleep(0.1)  # every connection accepted by its server
        stopped_at = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        answers = [answer.result() for answer in reading]
    assert served.process.wait(30) == 0
    # Every request the apps had accepted was answered from the database, some of them
    # after the stop began: the database stopped after the drain.
    assert [status for status, _ in answers] == [200] * 32
    assert max(ended for _, ended in answers) > stopped_at
    assert not postmaster.is_running()
    assert not state.exists()
    log = served.log.read_text()
    assert "received fast shutdown request" in log and "database system is shut down" in log
    served.stop()


def test_a_killed_up_sh_leaves_neither_its_servers_nor_postgresql_running(tmp_path):
    """A SIGKILL runs none of up.sh's own stop; its servers and PostgreSQL lead sessions of
    their own, so only the signal the kernel sends them when up.sh dies stops them."""
    served = serve(tmp_path / "up.log", DATABASE="postgres")
    postmaster = postmaster_of(served)
    state = Path(postmaster.cmdline()[postmaster.cmdline().index("-D") + 1]).parent
    try:
        tree = served.tree()
        assert postmaster in tree
        served.process.kill()
        served.process.wait(5)
        _, alive = psutil.wait_procs(tree[1:], timeout=30)
    finally:
        served.stop()  # kills whatever is left, so that nothing outlives the test
        shutil.rmtree(state, ignore_errors=True)  # up.sh had no chance to remove it
    assert alive == []


def test_without_a_database_the_database_routes_answer_503_and_the_rest_serve(served_factory):
    served = served_factory(DATABASE="none")
    assert "database: none, so /db, /queries, /fortunes and /updates answer 503" in (
        serving_line(served)
    )
    for app in APPS:
        for path in ("/db", "/queries?n=2", "/fortunes", "/updates?n=2"):
            answer = get(served.urls[app], path)
            assert answer.status_code == 503
            assert answer.json() == {"detail": database.NO_DATABASE}
        assert get(served.urls[app], "/json").status_code == 200
        assert get(served.urls[app], "/status").json()["database"] is None


UNITD = os.environ.get("UNITD", "unitd")
needs_unitd = pytest.mark.skipif(
    shutil.which(UNITD) is None,
    reason=f"NGINX Unit's unitd ({UNITD}) is not on PATH: set UNITD=/path/to/unitd",
)
SERVERS = [
    pytest.param({"SERVER": "granian"}, id="granian"),
    pytest.param(
        {"SERVER": "unit", "UNITD": UNITD}, id="unit", marks=[pytest.mark.unit, needs_unitd]
    ),
]


@pytest.mark.parametrize("server", SERVERS)
def test_both_apps_answer_503_while_postgresql_is_down_and_recover_by_themselves(tmp_path, server):
    with postgres_cluster() as (cluster, url):
        served = serve(tmp_path / "up.log", DATABASE_URL=url, **server)
        try:
            for app in APPS:
                assert get(served.urls[app], "/db").status_code == 200
            cluster.stop()
            for app in APPS:
                # Pooled connections fail at once (the first /db); then no connection
                # comes within the pool's timeout (the rest). Either way: the same 503,
                # and no longer than that.
                for path in ("/db", "/db", "/queries?n=3", "/fortunes", "/updates?n=2"):
                    started = time.monotonic()
                    answer = get(served.urls[app], path)
                    assert (answer.status_code, answer.json()) == (
                        503,
                        {"detail": database.UNAVAILABLE},
                    )
                    assert time.monotonic() - started < database.POOL_TIMEOUT_S + 10
                for path in ("/", "/json", "/status", "/io?ms=1", "/cpu?n=100"):
                    assert get(served.urls[app], path).status_code == 200
            cluster.run()  # the same data, on the same socket
            for app in APPS:
                # Each pool (FastAPI's under Unit: one per event loop) recovers on its own,
                # and one the outage's requests never reached finds its broken connection
                # at its next request: so recovered means answering right, time after time.
                right_in_a_row, deadline = 0, time.monotonic() + 60
                while right_in_a_row < 12:
                    assert time.monotonic() < deadline, f"{app} did not recover within 60 s"
                    answer = get(served.urls[app], "/fortunes")
                    right = answer.status_code == 200
                    assert right or answer.json() == {"detail": database.UNAVAILABLE}
                    assert not right or answer.content == expected_fortunes()
                    right_in_a_row = right_in_a_row + 1 if right else 0
                    time.sleep(0 if right else 0.2)
        finally:
            served.stop()


@pytest.mark.unit
@needs_unitd
def test_under_unit_fastapi_splits_its_connections_over_its_event_loops(served_factory):
    served = served_factory(SERVER="unit", UNITD=UNITD, DATABASE="postgres", DATABASE_POOL_SIZE="8")
    blocks = {app: get(served.urls[app], "/status").json()["database"] for app in APPS}
    # Four threads: Flask's share one pool; FastAPI runs four event loops, a pool each.
    assert (blocks["flask"]["pool_size"], blocks["flask"]["pools"]) == (8, 1)
    assert (blocks["fastapi"]["pool_size"], blocks["fastapi"]["pools"]) == (8, 4)
    for app in APPS:
        for _ in range(20):
            assert get(served.urls[app], "/queries?n=5").status_code == 200
    deadline = time.monotonic() + 30
    while len(backends(served)) != 16 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(backends(served)) == 16  # 8 per app, whatever ran


@pytest.mark.unit
@needs_unitd
def test_under_unit_a_pool_its_event_loops_cannot_share_is_refused():
    result = run_up(SERVER="unit", UNITD=UNITD, DATABASE="postgres", DATABASE_POOL_SIZE="6")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "up.sh: DATABASE_POOL_SIZE=6 cannot be split evenly over the 4 event loops that each"
        " FastAPI worker runs under Unit (one per thread): give a multiple of 4"
    )


def test_a_private_tmpdir_does_not_keep_postgresql_from_its_cluster(tmp_path):
    # As root, PostgreSQL runs as another user, who cannot enter a TMPDIR of root's own:
    # its state goes to /tmp instead.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    served = serve(tmp_path / "up.log", DATABASE="postgres", TMPDIR=str(private))
    try:
        for app in APPS:
            assert get(served.urls[app], "/db").status_code == 200
        postmaster = postmaster_of(served)
        data = Path(postmaster.cmdline()[postmaster.cmdline().index("-D") + 1])
        expected = Path("/tmp") if postmaster.uids().real != os.getuid() else private
        assert data.parent.parent == expected
    finally:
        served.stop()
