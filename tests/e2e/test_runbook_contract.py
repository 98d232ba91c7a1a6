"""The runbook and the crontab are the spec: every command line they hold must exist and accept
its flags, and every script's --help must be instant (no AWS, HTTP, radon, zstandard or DynamoDB module imported)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT.parent / "shared" / "RUNBOOK.md"
SCRIPTS = sorted(p.name for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_"))
PLACEHOLDERS = {
    "<evolution_id>": "evo-20240115000000-abcdef", "<task_id>": "task-20240115000000-abcdef",
    "<trace_id>": "0" * 32, "<pr_number>": "1", "<agent_name>": "research-agent",
    "$EVOLUTION_TARGET": "packages/agents", "$EVOLUTION_CYCLES": "1", "$EVOLUTION_FOCUS": "quality",
}  # fmt: skip


def runbook_commands() -> list[list[str]]:
    """Every `python scripts/...` and `python -m mcp.test` command of the runbook, continuations joined."""
    text = RUNBOOK.read_text().replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if re.match(r"^(\d+ .* )?python (scripts/|-m mcp\.test)", line) or line.startswith("python scripts/"):
            line = line[line.index("python "):]
            for placeholder, value in PLACEHOLDERS.items():
                line = line.replace(placeholder, value)
            commands.append(shlex.split(line)[1:])
    return commands


def crontab_commands() -> list[list[str]]:
    commands = []
    for line in (ROOT / "crontab.example").read_text().splitlines():
        if not line.strip() or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a cron line: {line}"
        for field in fields[:5]:
            assert re.fullmatch(r"[\d*,/-]+", field), f"bad schedule field {field!r} in {line}"
        command = fields[5]
        assert ">>" in command and "2>&1" in command, f"no log redirection: {line}"
        match = re.search(r"python (scripts/\S+\.py[^>]*)>>", command)
        assert match, f"not a project command: {line}"
        commands.append(shlex.split(match.group(1)))
    return commands


def accepts_flags(argv: list[str]) -> subprocess.CompletedProcess:
    """Parse the flags for real, then stop at --help (click rejects an unknown flag before help)."""
    return subprocess.run([sys.executable, *argv, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not RUNBOOK.exists(), reason="shared/RUNBOOK.md is not beside the checkout")
@pytest.mark.parametrize("argv", runbook_commands() if RUNBOOK.exists() else [], ids=" ".join)
def test_every_runbook_command_exists_and_accepts_its_flags(argv):
    if argv[0] != "-m":
        assert (ROOT / argv[0]).is_file(), f"{argv[0]} does not exist"
    result = accepts_flags(argv)
    assert result.returncode == 0, result.stderr


def test_crontab_has_every_scheduled_runbook_line():
    scheduled = {" ".join(argv) for argv in crontab_commands()}
    for expected in ("scripts/health_check.py --full", "scripts/show_evolution_history.py --since yesterday",
                     "scripts/check_stuck_processes.py", "scripts/cleanup.py --temp --older-than 24h",
                     "scripts/backup_history.py --date today", "scripts/update_patterns.py --source evolution_history/",
                     "scripts/analyze_performance.py --week", "scripts/security_audit.py --full",
                     "scripts/weekly_maintenance.py", "scripts/rotate_secrets.py --all",
                     "scripts/archive_logs.py --older-than 30d", "scripts/generate_monthly_report.py",
                     "scripts/backup.py --daily", "scripts/backup.py --full"):
        assert any(line == expected or line.startswith(f"{expected} --notify") for line in scheduled), expected


def test_every_crontab_line_names_its_own_heartbeat_job():
    lines = [line for line in (ROOT / "crontab.example").read_text().splitlines()
             if line.strip() and not line.startswith("#") and not re.match(r"^[A-Z_]+=", line)]
    jobs = [re.search(r"&& TDEV_CRON_JOB=(\w+) python ", line) for line in lines]
    assert all(jobs), [line for line, job in zip(lines, jobs, strict=True) if not job]
    names = [job.group(1) for job in jobs]
    assert len(set(names)) == len(names)  # one healthchecks.io check per line: its own schedule
    assert {"backup", "backup_history", "health", "cleanup", "security_audit", "weekly_maintenance",
            "export_metrics"} <= set(names)  # the jobs DESIGN §9 names


@pytest.mark.parametrize("argv", crontab_commands(), ids=" ".join)
def test_every_crontab_command_exists_and_accepts_its_flags(argv):
    assert (ROOT / argv[0]).is_file(), f"{argv[0]} does not exist"
    result = accepts_flags(argv)
    assert result.returncode == 0, result.stderr


#: What no --help may load: AWS, HTTP, the measurement's radon, backups' zstandard (and the DynamoDB store).
HEAVY_FOR_HELP = {"boto3", "botocore", "requests", "urllib3", "radon", "zstandard"}


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_is_instant_and_shows_a_runbook_example(script):
    result = subprocess.run([sys.executable, "-X", "importtime", f"scripts/{script}", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "python scripts/" in result.stdout or "python -m mcp.test" in result.stdout
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    heavy = {name for name in imported if name.split(".")[0] in HEAVY_FOR_HELP or name == "lib.store.dynamodb"}
    assert not heavy, f"{script} --help imports {sorted(heavy)[:5]}: it must load only what its command uses"
