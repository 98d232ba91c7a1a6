"""End to end (issue 10): health_check.py under faults tells the truth. A backup folder that cannot be
written is critical (and backup.py says which path and what to do); a broken settings.yaml is a row of
its own while every check that does not need it still runs; the AWS region follows the standard chain
and the credentials row says where it came from."""

from __future__ import annotations

import json
import os

import boto3
import pytest


def health(tdev, *args, env=None) -> tuple[int, dict]:
    result = tdev.run("health_check.py", "--json", *args, env=env)
    return result.returncode, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def destinations(tdev):
    """A file where a folder is expected, and (not for root, whom permissions do not stop) a read-only folder."""
    found = [("a file", tdev.base / "backups-file")]
    found[0][1].write_text("not a folder\n")
    if os.geteuid() != 0:
        read_only = tdev.base / "read-only"
        read_only.mkdir(mode=0o555)
        found.append(("read-only", read_only))
    return found


def test_unwritable_backup_folder_is_critical_and_backup_names_path_and_fix(tdev):
    assert tdev.run("init_evolution.py").returncode == 0
    code, checks = health(tdev)
    assert checks["backup_destination"]["status"] == "ok"
    for what, folder in destinations(tdev):
        env = {"TDEV_BACKUP_DIR": str(folder)}
        code, checks = health(tdev, env=env)
        row = checks["backup_destination"]
        assert code == 2 and row["status"] == "critical", what
        assert str(folder) in row["summary"] and "point TDEV_BACKUP_DIR at one" in row["summary"], what
        backup = tdev.run("backup.py", "--daily", env=env)
        assert backup.returncode == 1 and "Traceback" not in backup.stderr and "unexpected" not in backup.stderr
        line = backup.stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: cannot write backups to {folder}") and "TDEV_BACKUP_DIR" in line, what


def test_a_missing_parent_folder_is_fine_and_is_created_by_the_backup(tdev):
    assert tdev.run("init_evolution.py").returncode == 0
    folder = tdev.base / "new" / "backups"
    env = {"TDEV_BACKUP_DIR": str(folder)}
    assert health(tdev, env=env)[1]["backup_destination"]["status"] == "ok"
    assert tdev.run("backup.py", "--daily", "--no-s3", env=env).returncode == 0
    assert list(folder.rglob("*.tar.zst"))


@pytest.mark.parametrize("text", ["evolution: [unclosed\n", "health: {check_timeout_seconds: -1}\n",
                                  "region: a\nregion: b\n"])
def test_broken_settings_is_one_critical_row_and_the_rest_still_runs(tdev, text):
    assert tdev.run("init_evolution.py").returncode == 0
    path = tdev.write_config("settings", text)
    result = tdev.run("health_check.py")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stdout.startswith("HEALTH CRITICAL")
    code, checks = health(tdev)
    assert code == 2
    assert checks["config"]["status"] == "critical" and str(path) in checks["config"]["summary"]
    for independent in ("store", "stale_locks", "backup_destination", "aws_credentials"):
        assert checks[independent]["status"] == "ok", checks[independent]
    assert checks["disk"]["status"] == "unknown"  # it needs settings' min_free_disk_gb, and says so
    assert checks["disk"]["summary"] == f"not checked: it needs {path}, which is broken (its own row says why)"


@pytest.fixture
def eu_profile(tdev, aws, monkeypatch):
    """AWS_PROFILE names a profile in eu-west-1; no region in the environment; settings say us-east-1."""
    config_file = tdev.base / "aws-config"
    config_file.write_text("[profile ops]\nregion = eu-west-1\nretry_mode = adaptive\n")
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        tdev.env.pop(key)
        monkeypatch.delenv(key)
    tdev.env.update(AWS_CONFIG_FILE=str(config_file), AWS_PROFILE="ops")
    return config_file


def test_region_follows_the_profile_not_the_settings(tdev, aws, eu_profile):
    assert "region: us-east-1" in (tdev.config_dir / "settings.yaml").read_text()
    code, checks = health(tdev)
    assert checks["aws_credentials"]["status"] == "ok"
    assert checks["aws_credentials"]["summary"].endswith(f"region eu-west-1 (from profile ops in {eu_profile})")
    assert tdev.run("set_cost_limits.py", "--daily", "100", "--per-cycle", "10").returncode == 0
    topics = {region: [t["TopicArn"] for t in boto3.client("sns", region_name=region).list_topics()["Topics"]]
              for region in ("eu-west-1", "us-east-1")}
    assert topics["us-east-1"] == [] and topics["eu-west-1"][0].startswith("arn:aws:sns:eu-west-1:")
    code, checks = health(tdev, env={"AWS_REGION": "ap-south-1"})  # the environment still comes first
    assert checks["aws_credentials"]["summary"].endswith("region ap-south-1 (from AWS_REGION)")


def test_settings_region_only_when_the_chain_names_none(tdev, aws, eu_profile):
    eu_profile.write_text("[profile ops]\noutput = json\n")
    code, checks = health(tdev)
    settings = tdev.config_dir / "settings.yaml"
    assert checks["aws_credentials"]["summary"].endswith(
        f"region us-east-1 (from {settings} (the chain names no region))")
