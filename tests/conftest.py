"""Shared fixtures: an isolated probe home per test session, the shared reference data, a real Redis."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PROBE = str(Path(sys.executable).with_name("probe"))


def pytest_configure(config):
    # Keep test databases and built baselines out of the user's data dir; keep the converted local model
    # in the real user cache (it takes ~20 s to build, and is the same for every run).
    home = Path(os.environ.get("PROBE_TEST_HOME") or ROOT / ".pytest_cache" / "probe-home")
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


@pytest.fixture(scope="session")
def redis_url():
    """PROBE_TEST_REDIS when set (CI starts one), else a private redis-server on a free loopback port."""
    if url := os.environ.get("PROBE_TEST_REDIS"):
        yield url
        return
    exe = shutil.which("redis-server")
    if not exe:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def run_probe(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([PROBE, *args], capture_output=True, text=True, env=e, timeout=timeout)
