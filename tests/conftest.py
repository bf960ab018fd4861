"""Shared fixtures: an isolated probe home per test session, the shared reference data, a real Redis, a real
PostgreSQL.

Servers (everything on 127.0.0.1; a server a fixture starts is stopped by its PID when the fixture ends):

- `redis_url` (session): PROBE_TEST_REDIS when set (.ci/run starts one), else a private redis-server.
- `redis_server` (function): a private redis-server of the test's own, `.url`, `.port`, `.pid`,
  `.restart(lose_data=True)` (kill -9 it and start it again on the same port: with lose_data=True the data is
  gone, with lose_data=False it is saved first and loaded again), `.stop()`, `.start()`.
- `pg_server` (session): a PostgreSQL server. `.url` is its admin SQLAlchemy URL
  (postgresql+psycopg://postgres@127.0.0.1:PORT/postgres), `.conninfo(dbname)` a libpq string for psycopg,
  `.url_for(dbname)`, `.restart()` (fast restart, returns once it accepts connections again), `.stop()` and
  `.start()` for a test that holds it down for a while (a server a test left stopped is started again when
  the test ends).
  Where it comes from, first that applies:
    PROBE_TEST_PG      the admin URL of a running server (.ci/run exports it), with
    PROBE_TEST_PG_CTL  the command that runs pg_ctl for that server, shell-quoted, everything but the action:
                       e.g. `runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D DATA -l LOG`;
                       restart() appends `-w -t 60 -m fast restart`, stop() `... stop`, start() `... start`.
                       Unset: restart/stop/start fail (skip outside CI).
    else a private cluster made with initdb (/usr/lib/postgresql/*/bin, or initdb on PATH) in a temp dir,
    as the postgres user when we are root, on a free loopback port, trust auth, fsync off; removed at the end.
    else skipped: "PostgreSQL is not installed".
- `pg_url` (function): a fresh empty database probe_test_<random> on pg_server; yields its SQLAlchemy URL;
  dropped afterwards (its connections terminated first).
- `db_url` (function, params "sqlite" and "postgresql"): a SQLite file URL in tmp_path, or pg_url; for tests
  that must hold for both stores.

Under CI (CI=true), a missing Redis or PostgreSQL fails the tests that need it instead of skipping them, so a
broken CI set-up shows.

Parallel runs (pytest-xdist, `-n 2`): tests restart and stop servers, and fleet tests share Celery's queue, so
each xdist worker has servers of its own: gw0 (or a plain run) takes PROBE_TEST_REDIS / PROBE_TEST_PG, every
other worker starts private ones; each worker has its own PROBE_HOME.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PROBE = str(Path(sys.executable).with_name("probe"))


def xdist_worker() -> str | None:
    """This process's pytest-xdist worker id (gw0, gw1, ...), None in a plain run or in xdist's controller."""
    return os.environ.get("PYTEST_XDIST_WORKER")


def takes_shared_servers() -> bool:
    """Whether this process uses the servers named by PROBE_TEST_REDIS / PROBE_TEST_PG (see the docstring)."""
    return xdist_worker() in (None, "gw0")


def pytest_configure(config):
    # Keep test databases and built baselines out of the user's data dir; keep the converted local model
    # in the real user cache (it takes ~20 s to build, and is the same for every run).
    home = Path(os.environ.get("PROBE_TEST_HOME") or ROOT / ".pytest_cache" / "probe-home")
    if worker := xdist_worker():
        home = home / worker
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.environ["PROBE_HOME"] = str(home)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for key in ("PROBE_DB", "PROBE_BROKER", "OPENAI_API_KEY"):
        os.environ.pop(key, None)


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared reference data is not present")
    return SHARED


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str):
    """Skip a test for want of a server; under CI fail it, since .ci/run must provide every server."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: .ci/run must provide it)", pytrace=False)
    pytest.skip(reason)


def wait_port(port: int, timeout: float = 10) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_pid(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a process we started, by its PID; kill it if it does not go."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


# ---------------------------------------------------------------------------------------------------- Redis

@pytest.fixture(scope="session")
def redis_url():
    """PROBE_TEST_REDIS when set (CI starts one), else a private redis-server on a free loopback port."""
    if (url := os.environ.get("PROBE_TEST_REDIS")) and takes_shared_servers():
        yield url
        return
    exe = shutil.which("redis-server")
    if not exe:
        unavailable("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not wait_port(port) and in_ci():
        stop_pid(proc)
        pytest.fail(f"redis-server did not start on port {port}", pytrace=False)
    yield f"redis://127.0.0.1:{port}/0"
    stop_pid(proc)


class RedisServer:
    """A private redis-server on a fixed loopback port that a test may kill and start again."""

    def __init__(self, exe: str, workdir: Path):
        self.exe = exe
        self.dir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self, timeout: float = 15) -> None:
        if self.pid:
            return
        # Snapshots only when asked for (restart(lose_data=False) saves one); none are taken on their own.
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--dbfilename", "dump.rdb"],
            stdout=log, stderr=log)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                break
            if self._ping():
                return
            time.sleep(0.05)
        tail = (self.dir / "redis.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}:\n{tail}")

    def kill(self) -> None:
        """kill -9, the way a crashed server goes: nothing is saved."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc:
            stop_pid(self.proc)

    def restart(self, lose_data: bool = True) -> None:
        """Kill the server and start it again on the same port; with lose_data=True it comes back empty."""
        if not lose_data and self.pid:
            import redis

            client = redis.Redis.from_url(self.url)
            try:
                client.save()
            finally:
                client.close()
        self.kill()
        if lose_data:
            (self.dir / "dump.rdb").unlink(missing_ok=True)
        self.start()


@pytest.fixture
def redis_server(tmp_path_factory):
    """A private redis-server for one test; `.restart(lose_data=True)` kills it and brings it back empty."""
    exe = shutil.which("redis-server")
    if not exe:
        unavailable("redis-server is not installed (apt-get install -y redis-server)")
    workdir = tmp_path_factory.mktemp("redis")
    for attempt in range(3):  # a free port can be taken by someone else before redis binds it
        server = RedisServer(exe, workdir)
        try:
            server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------- PostgreSQL

def find_pg_bin() -> Path | None:
    """The bin dir of the newest Debian PostgreSQL, else the one of initdb on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: [int(x) if x.isdigit() else 0 for x in Path(p).parent.parent.name.split(".")])
    if found:
        return Path(found[-1]).parent
    exe = shutil.which("initdb")
    return Path(exe).parent if exe else None


class PgServer:
    """A PostgreSQL server reachable on loopback, which tests may restart, stop and start again."""

    def __init__(self, url: str, pg_ctl: list[str] | None):
        from sqlalchemy.engine import make_url

        self._url = make_url(url)
        self.host = self._url.host or "127.0.0.1"
        self.port = self._url.port or 5432
        self.user = self._url.username or "postgres"
        self.password = self._url.password
        self.admin_db = self._url.database or "postgres"
        self.url = self.url_for(self.admin_db)
        self.pg_ctl = pg_ctl
        self.stopped = False

    def url_for(self, dbname: str) -> str:
        """The SQLAlchemy URL of database `dbname` on this server."""
        return self._url.set(drivername="postgresql+psycopg", database=dbname).render_as_string(hide_password=False)

    def conninfo(self, dbname: str | None = None) -> str:
        """A libpq connection string for psycopg.connect."""
        from psycopg.conninfo import make_conninfo

        kw = {"host": self.host, "port": self.port, "user": self.user, "dbname": dbname or self.admin_db}
        if self.password:
            kw["password"] = self.password
        return make_conninfo(**kw)

    def connect(self, dbname: str | None = None, **kw):
        import psycopg

        return psycopg.connect(self.conninfo(dbname), connect_timeout=5, **kw)

    def wait_ready(self, timeout: float = 60) -> None:
        """Return once a new connection can run a query; raise after `timeout` seconds."""
        import psycopg

        deadline = time.time() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.time() > deadline:
                    raise RuntimeError(f"PostgreSQL at {self.host}:{self.port} does not accept connections: {exc}")
                time.sleep(0.1)

    def _ctl(self, *action: str) -> None:
        if not self.pg_ctl:
            unavailable("PROBE_TEST_PG is set but PROBE_TEST_PG_CTL is not: this PostgreSQL cannot be restarted")
        with tempfile.TemporaryFile() as out:  # a file, not a pipe: a server started without -l keeps its stdout
            rc = subprocess.run([*self.pg_ctl, "-w", "-t", "60", *action], stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd="/").returncode
            out.seek(0)
            text = out.read().decode(errors="replace")
        if rc:
            raise RuntimeError(f"pg_ctl {' '.join(action)} failed ({rc}):\n{text}")

    def restart(self) -> None:
        """Fast restart (open connections are cut); return once it accepts connections again."""
        self._ctl("-m", "fast", "restart")
        self.stopped = False
        self.wait_ready()

    def stop(self) -> None:
        self._ctl("-m", "fast", "stop")
        self.stopped = True

    def start(self) -> None:
        self._ctl("start")
        self.stopped = False
        self.wait_ready()

    def ensure_running(self) -> None:
        if self.stopped:
            self.start()


def _as_pg_user() -> list[str]:
    """Command prefix to run PostgreSQL's programs: as the postgres user when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root and there is no postgres user to run PostgreSQL as", pytrace=False)
    return ["runuser", "-u", "postgres", "--"]


class PrivateCluster:
    """A throwaway cluster in a temp dir: initdb, trust auth on 127.0.0.1 only, fsync off."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.prefix = _as_pg_user()
        self.base = Path(tempfile.mkdtemp(prefix="probe-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        if self.prefix:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.pg_ctl = [*self.prefix, str(bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log)]
        self.port: int | None = None

    def _run(self, cmd: list[str]) -> None:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd="/")
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    def start(self) -> None:
        self._run([*self.prefix, str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                   "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"])
        (self.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        with open(self.data / "postgresql.conf", "a") as f:
            f.write("\n# probe tests\ninclude 'probe_test.conf'\n")
        for attempt in range(5):  # a free port can be taken by someone else before the server binds it
            self.port = free_port()
            (self.data / "probe_test.conf").write_text(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.base}'\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n")
            try:
                self._run([*self.pg_ctl, "-w", "-t", "60", "start"])
                return
            except RuntimeError:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                if attempt == 4 or "already in use" not in log:
                    raise

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def destroy(self) -> None:
        """Stop the server (pg_ctl, then its postmaster PID if need be) and remove the cluster."""
        if (self.data / "postmaster.pid").exists():
            try:
                self._run([*self.pg_ctl, "-w", "-t", "30", "-m", "immediate", "stop"])
            except RuntimeError:
                try:
                    pid = int((self.data / "postmaster.pid").read_text().split()[0])
                    os.kill(pid, signal.SIGQUIT)
                except (OSError, ValueError, IndexError):
                    pass
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    """PostgreSQL for the tests: PROBE_TEST_PG (CI), else a private cluster, else skip (fail under CI)."""
    if (url := os.environ.get("PROBE_TEST_PG")) and takes_shared_servers():
        ctl = os.environ.get("PROBE_TEST_PG_CTL")
        server = PgServer(url, shlex.split(ctl) if ctl else None)
        server.wait_ready(timeout=30)
        yield server
        server.ensure_running()
        return
    bindir = find_pg_bin()
    if bindir is None:
        unavailable("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or on PATH: "
                    "apt-get install -y postgresql), and PROBE_TEST_PG is unset")
    cluster = PrivateCluster(bindir)
    try:
        cluster.start()
        server = PgServer(cluster.url, cluster.pg_ctl)
        server.wait_ready(timeout=30)
        yield server
    finally:
        cluster.destroy()


@pytest.fixture(autouse=True)
def _pg_left_stopped(request):
    """A test that stopped pg_server and did not start it again leaves it running for the next test."""
    server = request.getfixturevalue("pg_server") if "pg_server" in request.fixturenames else None
    yield
    if server is not None:
        server.ensure_running()


@pytest.fixture
def pg_url(pg_server):
    """A fresh empty database for one test; its SQLAlchemy URL. Dropped afterwards."""
    name = f"probe_test_{secrets.token_hex(6)}"
    with pg_server.connect(autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield pg_server.url_for(name)
    try:
        pg_server.ensure_running()
        with pg_server.connect(autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except Exception:
        pass


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """The store URL, once per store: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'probe.db'}"
    return request.getfixturevalue("pg_url")


def run_probe(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([PROBE, *args], capture_output=True, text=True, env=e, timeout=timeout)
