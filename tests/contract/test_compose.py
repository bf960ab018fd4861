"""compose.yaml, Dockerfile and .dockerignore: the fleet a team runs with `docker compose up`.

No Docker engine is needed: the files are parsed and checked for the structure the fleet relies on (healthchecks,
start order, restart policies, named volumes, Redis persistence, keys only from an uncommitted env file), and every
service command that starts with `probe` is run through the installed CLI with `--help` appended, and parsed
in-process with its real arguments, so a renamed command or option breaks this test instead of the fleet.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from tests.conftest import ROOT, run_probe

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict = COMPOSE["services"]

PROBE_DB = "postgresql+psycopg://probe:probe@postgres:5432/probe"
PROBE_BROKER = "redis://redis:6379/0"
LONG_RUNNING = ("redis", "postgres", "worker", "beat", "flower")
RESTARTS = ("always", "unless-stopped")
APPS = ("worker", "beat")  # probe services that reach the broker, the store and the providers

# Commands compose runs whose implementation landed after compose.yaml (DESIGN.md "Operations" names them). They are
# checked like every other command, not skipped: until they exist, this test fails on them, on purpose.
ADDED_WITH_COMPOSE = {"migrate": "probe db upgrade", "beat": "probe beat"}


def argv(service: str) -> list[str]:
    cmd = SERVICES[service].get("command")
    assert cmd, f"service {service} has no command"
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]


def depends(service: str) -> dict[str, str]:
    """depends_on as {service: condition}; the short list form means service_started."""
    d = SERVICES[service].get("depends_on") or {}
    if isinstance(d, list):
        return {name: "service_started" for name in d}
    return {name: (v or {}).get("condition", "service_started") for name, v in d.items()}


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {k: (None if v is None else str(v)) for k, v in env.items()}


PROBE_SERVICES = sorted(s for s in SERVICES if SERVICES[s].get("command") and argv(s)[0] == "probe")


# --- (1) structure -------------------------------------------------------------------------------------------------

def test_services():
    assert set(SERVICES) == {"redis", "postgres", "migrate", "worker", "beat", "flower"}
    assert set(PROBE_SERVICES) == {"migrate", "worker", "beat"}


def test_redis_appends_to_a_named_volume_and_has_a_healthcheck():
    redis = SERVICES["redis"]
    assert redis["image"].startswith("redis:")
    cmd = argv("redis")
    assert cmd[0] == "redis-server" and "--appendonly" in cmd and cmd[cmd.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])


def test_postgres_official_image_named_volume_and_healthcheck():
    pg = SERVICES["postgres"]
    assert pg["image"].split(":")[0] in ("postgres", "library/postgres", "docker.io/library/postgres")
    env = environment("postgres")
    assert env["POSTGRES_USER"] == "probe" and env["POSTGRES_DB"] == "probe"
    assert any(":/var/lib/postgresql" in v for v in pg["volumes"])
    assert "pg_isready" in " ".join(pg["healthcheck"]["test"])


@pytest.mark.parametrize("service", ["redis", "postgres"])
def test_healthcheck_is_complete(service):
    hc = SERVICES[service]["healthcheck"]
    assert hc["test"][0] in ("CMD", "CMD-SHELL")
    assert {"interval", "timeout", "retries"} <= set(hc)


def test_named_volumes_are_declared():
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for name, svc in SERVICES.items():
        for v in svc.get("volumes", []):
            source = v.split(":")[0] if isinstance(v, str) else v.get("source")
            assert source and not source.startswith((".", "/", "~")), f"{name}: {v} is a bind mount, not a named volume"
            used.add(source)
    assert {"redis", "postgres"} <= {n for n, s in SERVICES.items() if s.get("volumes")}
    assert used and used <= declared


def test_migrate_runs_once_after_postgres_is_healthy():
    assert argv("migrate") == ["probe", "db", "upgrade", "--db", PROBE_DB]
    assert depends("migrate") == {"postgres": "service_healthy"}
    assert str(SERVICES["migrate"].get("restart", "no")) == "no"  # a one-shot: restarting it would loop


@pytest.mark.parametrize("service", APPS)
def test_worker_and_beat_start_after_healthy_stores_and_a_finished_migration(service):
    assert environment(service) == {"PROBE_BROKER": PROBE_BROKER, "PROBE_DB": PROBE_DB}
    assert depends(service) == {"redis": "service_healthy", "postgres": "service_healthy",
                                "migrate": "service_completed_successfully"}


def test_commands():
    assert argv("worker") == ["probe", "worker", "--concurrency", "2"]
    assert argv("beat") == ["probe", "beat"]
    assert argv("flower") == ["celery", f"--broker={PROBE_BROKER}", "flower"]
    assert depends("flower").get("redis") == "service_healthy"


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_long_running_services_restart(service):
    assert SERVICES[service].get("restart") in RESTARTS


def test_probe_services_share_one_image_built_from_the_repo():
    users = [s for s in SERVICES if s in PROBE_SERVICES or s == "flower"]
    assert {SERVICES[s].get("image") for s in users} == {SERVICES["worker"]["image"]}
    for s in users:
        build = SERVICES[s].get("build")
        assert build in (".", "./") or (isinstance(build, dict) and build.get("context") in (".", "./")), s


@pytest.mark.parametrize("service", APPS)
def test_keys_come_from_an_optional_uncommitted_env_file(service):
    env_file = SERVICES[service]["env_file"]
    assert isinstance(env_file, list) and len(env_file) == 1
    entry = env_file[0]
    assert Path(entry["path"]).name == "probe.env" and entry["required"] is False


def test_probe_env_is_never_committed():
    assert "probe.env" in (ROOT / ".gitignore").read_text().split()
    if (ROOT / ".git").exists():
        tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--", "probe.env"],
                                 capture_output=True, text=True, check=True).stdout
        assert not tracked.strip(), "probe.env is committed"
        ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "--no-index", "probe.env"])
        assert ignored.returncode == 0, "git does not ignore probe.env"


def test_env_example_documents_keys_without_values():
    lines = (ROOT / "probe.env.example").read_text().splitlines()
    assigned = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    assert not assigned, f"probe.env.example sets variables: {assigned}"
    assert any(re.match(r"#\s*OPENAI_API_KEY=$", ln) for ln in lines)


SECRET_PATTERNS = [r"sk-[A-Za-z0-9_-]{8,}", r"AKIA[0-9A-Z]{12,}", r"ghp_[A-Za-z0-9]{20,}", r"hf_[A-Za-z0-9]{20,}",
                   r"xox[bap]-[A-Za-z0-9-]{10,}", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"]


def test_no_secrets_in_compose_file():
    text = (ROOT / "compose.yaml").read_text()
    for pattern in SECRET_PATTERNS:
        assert not re.search(pattern, text), f"compose.yaml matches {pattern}"
    for name in SERVICES:
        for key, value in environment(name).items():
            if re.search(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", key, re.I):
                # the one password allowed is PostgreSQL's local one, the same as in PROBE_DB
                allowed = (name, key, value) == ("postgres", "POSTGRES_PASSWORD", "probe")
                assert allowed, f"{name}: {key} set in compose.yaml"


# --- (2) every `probe` command line parses with the installed CLI ----------------------------------------------------

def _missing_note(service: str) -> str:
    if service in ADDED_WITH_COMPOSE:
        return f" (`{ADDED_WITH_COMPOSE[service]}` is a DESIGN.md contract that compose.yaml runs; it must exist)"
    return ""


@pytest.mark.parametrize("service", PROBE_SERVICES)
def test_probe_command_help_through_the_installed_cli(service):
    cmd = argv(service)
    assert not any("$" in a for a in cmd), "Compose would fill $VARS from the host's environment, not the container's"
    r = run_probe(*cmd[1:], "--help", env=environment(service), timeout=120)
    assert r.returncode == 0, f"{shlex.join(cmd)} --help exited {r.returncode}{_missing_note(service)}:\n{r.stderr}"
    assert "Usage:" in r.stdout


@pytest.mark.parametrize("service", PROBE_SERVICES)
def test_probe_command_arguments_parse(service, monkeypatch):
    """--help exits before values are converted; parse the real arguments too (types, ranges, extra arguments)."""
    from probe.cli.main import app

    for key, value in environment(service).items():
        monkeypatch.setenv(key, value or "")
    cmd = argv(service)
    group = typer.main.get_command(app)  # Typer's own (vendored) Click: duck-typed below, not isinstance(click.*)
    ctx = typer.Context(group, info_name="probe")
    command, rest = group, cmd[1:]
    while hasattr(command, "get_command"):  # a command group
        assert rest, f"{shlex.join(cmd)} names a command group, not a command"
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"{shlex.join(cmd)}: no command {rest[0]!r}{_missing_note(service)}"
        ctx = typer.Context(sub, info_name=rest[0], parent=ctx)
        command, rest = sub, rest[1:]
    try:
        command.make_context(ctx.info_name, list(rest), parent=ctx.parent)
    except Exception as e:  # a usage error: no such option, a bad value, an extra argument
        pytest.fail(f"{shlex.join(cmd)}: {getattr(e, 'format_message', e.__str__)()}")


# --- (3) the image: what goes in, how it installs ---------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()
DOCKERIGNORE = (ROOT / ".dockerignore").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def ignore_patterns() -> set[str]:
    pats = set()
    for line in DOCKERIGNORE.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            pats.add(line.removeprefix("/").removeprefix("**/").rstrip("/"))
    return pats


def test_dockerignore_keeps_local_state_and_keys_out():
    assert {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "*.db", "probe.env"} <= ignore_patterns()
    assert not any(line.strip().startswith("!") and "env" in line for line in DOCKERIGNORE.splitlines())


def test_dockerfile_copy_never_takes_probe_env():
    copies = [rest for word, rest in dockerfile_instructions() if word in ("COPY", "ADD")]
    assert copies
    for rest in copies:
        args = yaml.safe_load(rest) if rest.startswith("[") else shlex.split(rest)
        sources = [a for a in args if not a.startswith("--")][:-1]
        for src in sources:
            assert not src.endswith(".env") and "probe.env" not in src, f"COPY {rest} takes {src}"
            if src.rstrip("/") in (".", "./", "*"):
                assert "probe.env" in ignore_patterns(), f"COPY {rest} takes probe.env unless .dockerignore drops it"


def test_dockerfile_installs_like_setup_sh_from_pypi_only():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    runs = " && ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
    assert not re.search(r"--(extra-)?index-url|--find-links|\spip[^&]*\s-f\s|https?://", runs), "an extra index host"
    torch = re.search(r"torch==[\w.+]+", setup).group(0)
    offline = re.search(r"--no-deps ((?:[\w.-]+==[\w.]+\s*)+)", setup).group(1).split()
    i_torch, i_probe = runs.find(f"pip install {torch}"), runs.find("pip install -e .")
    assert 0 <= i_torch < i_probe, "torch first, then probe"
    m = re.search(r"pip install --no-deps ((?:[\w.-]+==[\w.]+\s*)+)", runs)
    assert m and m.group(1).split() == offline and m.start() > i_probe
    assert re.search(r"pip install -e \.[^&]*\bflower==[\w.]+", runs), "Flower goes into the image"
    assert "flower" not in (ROOT / "pyproject.toml").read_text().lower()


def test_dockerfile_has_no_probe_entrypoint():
    # compose commands are whole argv lists (probe ..., celery ... flower): an ENTRYPOINT would prefix them
    assert not [rest for word, rest in dockerfile_instructions() if word == "ENTRYPOINT"]
