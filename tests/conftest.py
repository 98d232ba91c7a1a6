"""Shared fixtures: an isolated T-Developer home per test, scripts run as subprocesses,
a moto server on 127.0.0.1, a GitHub stand-in and real git repositories."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "support"))  # stand-ins and seeders: `from aws_helpers import ...`

from bedrock_standin import BedrockStandIn  # noqa: E402
from github_standin import GitHubStandIn  # noqa: E402
from openai_standin import OpenAIStandIn  # noqa: E402

PHASE_AGENTS = {"research": "research-agent", "plan": "planner-agent", "implement": "refactor-agent",
                "evaluate": "evaluator-agent"}
#: A shell planner that plans nothing: the cycle goes on to implement at once.
EMPTY_PLAN_AGENT = "cat >/dev/null\necho '{\"status\": \"ok\", \"output\": {\"files\": []}}'\n"
# GH_ and XDG_CONFIG_HOME: no gh host, token or login of the machine (gh reads its login from there)
_SCRUB = ("AWS_", "GITHUB_", "GH_", "XDG_CONFIG_HOME", "TDEV_", "EVOLUTION_", "MAX_CYCLES", "TIMEOUT_SECONDS",
          "DEBUG", "LOG_LEVEL")


class TDev:
    """One isolated installation: its own history, logs, backups, config and HOME."""

    def __init__(self, base: Path):
        self.base = base
        self.history = base / "history"
        self.config_dir = base / "config"
        self.home = base / "home"
        self.log_dir = base / "logs"
        self.backup_dir = base / "backups"
        self.mcp_log_dir = self.home / ".mcp" / "logs"
        self.mcp_config = base / "mcp" / "claude.mcp.json"
        shutil.copytree(ROOT / "config", self.config_dir)
        self.home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
        self.env.update(
            TDEV_HISTORY_DIR=str(self.history),
            TDEV_CONFIG_DIR=str(self.config_dir),
            TDEV_LOG_DIR=str(self.log_dir),
            TDEV_BACKUP_DIR=str(self.backup_dir),
            TDEV_MCP_LOG_DIR=str(self.mcp_log_dir),
            TDEV_MCP_CONFIG=str(self.mcp_config),
            HOME=str(self.home),
            AWS_CONFIG_FILE=str(base / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(base / "no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            PYTHONUNBUFFERED="1",
        )

    def pin_clock(self, moment: datetime) -> None:
        """`now` for the scripts (TDEV_NOW) and for in-process code, so no test depends on the time of day."""
        self.env["TDEV_NOW"] = moment.isoformat()
        self.monkeypatch.setenv("TDEV_NOW", moment.isoformat())

    def run(self, script: str, *args: str, input: str | None = None, timeout: float = 120,
            env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run `python scripts/<script>` (or `-m module` when script starts with -m) as an operator would."""
        command = [sys.executable, *script.split()] if script.startswith("-m ") else [
            sys.executable, str(ROOT / "scripts" / script)]
        return subprocess.run(
            [*command, *args], input=input, capture_output=True, text=True, timeout=timeout,
            env={**self.env, **(env or {})}, cwd=cwd or ROOT,
        )

    def write_config(self, name: str, text: str) -> Path:
        path = self.config_dir / f"{name}.yaml"
        path.write_text(text)
        return path

    def use_agents(self, commands: dict[str, list]) -> None:
        """Register a command agent for each phase given (its argv) and the local agent for the others."""
        lines = ["agents:"]
        for phase, name in PHASE_AGENTS.items():
            entry = {"name": name, "phase": phase, "runtime": "local"}
            if phase in commands:
                entry.update(runtime="command", command=[str(part) for part in commands[phase]])
            lines.append(f"  - {json.dumps(entry)}")
        self.write_config("agents", "\n".join(lines) + "\n")

    def shell_agent(self, name: str, body: str) -> Path:
        """An executable shell script agent in this installation's folder."""
        script = self.base / f"{name}.sh"
        script.write_text(f"#!/bin/sh\n{body}")
        script.chmod(0o755)
        return script


@pytest.fixture
def tdev(tmp_path, monkeypatch) -> TDev:
    """An isolated installation; the same variables are set for in-process unit tests."""
    installation = TDev(tmp_path)
    installation.monkeypatch = monkeypatch
    for key in list(os.environ):
        if key.startswith(_SCRUB):
            monkeypatch.delenv(key, raising=False)
    for key, value in installation.env.items():
        monkeypatch.setenv(key, value)
    from lib import config

    config.settings.cache_clear()
    return installation


@pytest.fixture
def store(tdev):
    """The installation's store, created empty."""
    from lib.store import open_store

    opened = open_store(create=True)
    yield opened
    opened.close()


@pytest.fixture
def utc(tdev, monkeypatch):
    """Local time is UTC for this test and its subprocesses, so that days and months are exact."""
    monkeypatch.setenv("TZ", "UTC")
    tdev.env["TZ"] = "UTC"
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def home(tdev, monkeypatch):
    """The installation as the project root (TDEV_HOME) with private permissions, so that .env files and
    the root are the test's (the security audit's tests)."""
    monkeypatch.setenv("TDEV_HOME", str(tdev.base))
    tdev.env["TDEV_HOME"] = str(tdev.base)
    tdev.history.mkdir(mode=0o700)
    os.chmod(tdev.config_dir, 0o700)
    for path in tdev.config_dir.iterdir():
        os.chmod(path, 0o600)
    return tdev


@pytest.fixture
def runners(tdev):
    """Ids of the evolutions a test starts: any runner still alive at the end is ended."""
    from evolution_runs import end_runners

    started: list[str] = []
    yield started
    end_runners(started)


# ---- AWS: one moto server for the session, reset for every test -------------------------

@pytest.fixture(scope="session")
def moto_endpoint():
    import moto_atomic
    from moto.server import ThreadedMotoServer

    moto_atomic.enable()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def moto_post(endpoint: str, path: str, document) -> None:
    request = urllib.request.Request(f"{endpoint}{path}", data=json.dumps(document).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture
def aws(tdev, moto_endpoint, monkeypatch) -> dict:
    """A clean moto server reached through AWS_ENDPOINT_URL, Lambda without Docker."""
    moto_post(moto_endpoint, "/moto-api/reset", {})
    moto_post(moto_endpoint, "/moto-api/config", {"lambda": {"use_docker": False}})
    env = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
    tdev.env.update(env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {"endpoint": moto_endpoint, **env}


# ---- GitHub stand-in ------------------------------------------------------------------------

@pytest.fixture
def github(tdev, monkeypatch):
    standin = GitHubStandIn().start()
    tdev.env.update(standin.env())
    for key, value in standin.env().items():
        monkeypatch.setenv(key, value)
    yield standin
    standin.stop()


# ---- Bedrock Runtime stand-in ------------------------------------------------------------

@pytest.fixture
def bedrock(tdev, monkeypatch):
    """The Converse stand-in, reached by this test and the scripts it runs, with dummy credentials."""
    standin = BedrockStandIn().start()
    tdev.env.update(standin.env())
    for key, value in standin.env().items():
        monkeypatch.setenv(key, value)
    yield standin
    standin.stop()


@pytest.fixture
def openai_server():
    """The OpenAI-compatible stand-in; agents reach it through base_url. Held answers are released at the end."""
    standin = OpenAIStandIn().start()
    yield standin
    standin.stop()


# ---- git ----------------------------------------------------------------------------------------

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


SAMPLE_MODULE = '''import os, sys


def add(a, b):
    return a+b


class Greeter:
    def greet(self, name):
        if name == None:
            return "hello"
        return "hello " + name
'''


@pytest.fixture
def git_repo(tmp_path) -> Path:
    """A repository with a bare origin and a small Python package under packages/agents."""
    origin = tmp_path / "origin.git"
    work = tmp_path / "repo"
    subprocess.run(["git", "init", "--bare", "-b", "main", str(origin)], check=True, capture_output=True)
    subprocess.run(["git", "init", "-b", "main", str(work)], check=True, capture_output=True)
    for key, value in (("user.email", "test@example.com"), ("user.name", "Test")):
        git(work, "config", key, value)
    package = work / "packages" / "agents"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Agents."""\n')
    (package / "sample.py").write_text(SAMPLE_MODULE)
    git(work, "add", "-A")
    git(work, "commit", "-m", "initial")
    git(work, "remote", "add", "origin", str(origin))
    git(work, "push", "-u", "origin", "main")
    return work


@pytest.fixture
def processes():
    """Start long-running programs, each leading its own process group as a runner does; every one is
    ended after the test (which may assert that a command left them alive)."""
    started = []

    def start(argv: list, env: dict | None = None) -> subprocess.Popen:
        process = subprocess.Popen([str(part) for part in argv], env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()
