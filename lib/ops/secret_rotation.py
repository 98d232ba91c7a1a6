"""Secrets Manager rotation for rotate_secrets.py (DESIGN §8). Never reads a value out loud.

Which secrets get a new value, and how:
- with a rotation Lambda: RotateSecret (the Lambda tests the new value against its consumer);
- tagged tdev:rotation=generated (a value only this system issues and reads): a new random
  value through the stages (put as AWSPENDING, read back as the test, AWSCURRENT moved to it
  so that the old one becomes AWSPREVIOUS, verified), then every agent that names the secret
  under `secrets:` in agents.yaml is restarted so that it reads the new value;
- every other secret of the project is issued elsewhere (a GitHub token, a database
  password): it never gets a value from us. It is reported with its age and, past settings
  retention.rotation_days, with a warning that says what to do; such a run exits 1.
Values are compared by digest only; nothing here prints or logs one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid

from lib import agents, cli, config, timeparse
from lib.adapters import aws
from lib.agents import fleet
from lib.errors import ExternalError, ToolError

ROTATION_TAG = "tdev:rotation"
GENERATED = "generated"
LAMBDA_TIMEOUT_SECONDS = 120
_SECRET_FIELD = re.compile(r"(?i)password|secret|token|key")

COLUMNS = [("name", "SECRET"), ("method", "METHOD"), ("result", "RESULT"), ("age_before", "AGE BEFORE"),
           ("age_after", "AGE AFTER"), ("detail", "DETAIL")]


def _digest(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


def prefix() -> str:
    return config.settings()["aws"]["secret_prefix"]


def select(name: str | None) -> list[str]:
    """The secrets to handle: one by name, or every secret under the project prefix."""
    if name:
        return [name]
    client = aws.client("secretsmanager")
    with aws.aws_errors("list the secrets"):
        found = aws.paginate(client, "list_secrets", "SecretList", Filters=[{"Key": "name", "Values": [prefix()]}])
    return sorted(s["Name"] for s in found if s["Name"].startswith(prefix()))


def new_value(current: str) -> str:
    """A fresh random value of the same shape: a JSON object keeps its keys, its secret fields change."""
    try:
        document = json.loads(current)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return secrets.token_urlsafe(32)
    fields = [key for key in document if _SECRET_FIELD.search(key)]
    if not fields:
        raise ToolError("a JSON secret without a password, secret, token or key field",
                        "add such a field, or give the secret a rotation Lambda")
    return json.dumps({**document, **{key: secrets.token_urlsafe(32) for key in fields}})


def consumers(name: str, arn: str | None = None) -> list[dict]:
    """The agents that name the secret (by name or ARN) under `secrets:` in agents.yaml."""
    return [agent for agent in agents.registry() if {name, arn} & set(agent.get("secrets") or ())]


class Rotator:
    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.client = aws.client("secretsmanager")
        self.limit = config.settings()["retention"]["rotation_days"]

    def describe(self, name: str) -> dict:
        with aws.aws_errors(f"describe secret {name}"):
            return self.client.describe_secret(SecretId=name)

    def age_days(self, described: dict) -> int | None:
        """Days since the current value was put (its version's creation; a tag edit does not count)."""
        with aws.aws_errors(f"list the versions of {described['Name']}"):
            versions = self.client.list_secret_version_ids(SecretId=described["ARN"], MaxResults=100)["Versions"]
        moments = [v.get("CreatedDate") for v in versions if "AWSCURRENT" in v.get("VersionStages", [])]
        moments = [m for m in moments if m] or [described.get(k) for k in ("LastRotatedDate", "CreatedDate")
                                                 if described.get(k)]
        return (timeparse.utcnow() - max(moments)).days if moments else None

    def handle(self, name: str) -> dict:
        """One secret; a failure is reported in the row, never raised."""
        row = {"name": name, "method": "", "result": "", "age_before": None, "age_after": None, "detail": "",
               "restarted": [], "ok": True, "warning": False}
        try:
            described = self.describe(name)
            row["age_before"] = self.age_days(described)
            if described.get("RotationLambdaARN"):
                row["method"] = "lambda"
            elif aws.tags_to_dict(described.get("Tags", [])).get(ROTATION_TAG) == GENERATED:
                row["method"] = GENERATED
            else:
                return self._report(row, described)
            if self.dry_run:
                names = [agent["name"] for agent in consumers(name, described["ARN"])]
                restart = f"; would restart {', '.join(names)}" if names and row["method"] == GENERATED else ""
                row.update(result="would rotate", detail=f"dry run{restart}")
                return row
            if row["method"] == "lambda":
                self._by_lambda(name, described)
                row.update(result="rotated", detail="verified by its rotation Lambda")
            else:
                self._by_stages(name, described)
                row.update(result="rotated", detail="verified")
                self._restart_consumers(row, consumers(name, described["ARN"]))
            row["age_after"] = self.age_days(self.describe(name))
        except ToolError as failure:
            row.update(result="failed", detail=f"{row['detail']}; {failure}".lstrip("; "), ok=False)
        return row

    def _report(self, row: dict, described: dict) -> dict:
        """A secret issued elsewhere: its age, and what to do once it is past rotation_days."""
        row.update(method="issued elsewhere", result="not changed", age_after=row["age_before"])
        if row["age_before"] is not None and row["age_before"] > self.limit:
            row.update(warning=True, detail=(
                f"WARNING: {row['age_before']} days old, past rotation_days {self.limit}: issue a new value where it "
                f"comes from, then aws secretsmanager put-secret-value --secret-id {described['Name']} "
                f"--secret-string file://<file>; if only T-Developer issues and reads it, tag it "
                f"{ROTATION_TAG}={GENERATED} (or give it a rotation Lambda)"))
        else:
            row["detail"] = f"issued elsewhere: never given a value here (warning past {self.limit} days)"
        return row

    def _restart_consumers(self, row: dict, named: list[dict]) -> None:
        """Restart each agent that reads the secret; one that runs per call (local, command) needs none.
        A failed restart fails the row, not the rotation."""
        problems = []
        for agent in named:
            try:
                fleet.restart(agent, dry_run=False)
                row["restarted"].append(agent["name"])
            except agents.Unsupported:
                continue  # it starts afresh for every call and reads the new value then
            except ToolError as failure:
                problems.append(f"restart of {agent['name']} failed: {failure}")
        if row["restarted"]:
            row["detail"] += f"; restarted {', '.join(row['restarted'])}"
        if problems:  # the new value is current: only the agents still hold the old one
            row.update(result="rotated, restart failed", ok=False,
                       detail=f"{row['detail']}; {'; '.join(problems)}; restart it: "
                              "python scripts/restart_agent.py --name <agent>")

    def _current_version(self, described: dict) -> str | None:
        stages = described.get("VersionIdsToStages", {})
        return next((v for v, s in stages.items() if "AWSCURRENT" in s), None)

    def _by_lambda(self, name: str, described: dict) -> None:
        before = self._current_version(described)
        with aws.aws_errors(f"rotate secret {name}"):
            self.client.rotate_secret(SecretId=name, RotateImmediately=True)
        after = aws.wait_for(lambda: self.describe(name), lambda d: self._current_version(d) != before and not any(
            "AWSPENDING" in s and "AWSCURRENT" not in s for s in d.get("VersionIdsToStages", {}).values()),
            LAMBDA_TIMEOUT_SECONDS, f"rotation of {name} by its Lambda")
        if self._current_version(after) == before:
            raise ExternalError(f"{name}: AWSCURRENT did not move", "check the rotation Lambda's logs")

    def _by_stages(self, name: str, described: dict) -> None:
        old_version = self._current_version(described)
        with aws.aws_errors(f"read secret {name}"):
            current = self.client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
        if "SecretString" not in current:
            raise ToolError(f"{name}: a binary secret", "give it a rotation Lambda")
        value = new_value(current["SecretString"])
        expected = _digest(value)
        token = str(uuid.uuid4())
        with aws.aws_errors(f"{name}: put the new value as AWSPENDING"):
            self.client.put_secret_value(SecretId=name, ClientRequestToken=token, SecretString=value,
                                         VersionStages=["AWSPENDING"])
        with aws.aws_errors(f"{name}: test the AWSPENDING value"):
            pending = self.client.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
        if _digest(pending["SecretString"]) != expected:
            raise ExternalError(f"{name}: the AWSPENDING value reads back different", "run again")
        with aws.aws_errors(f"{name}: move AWSCURRENT to the new version"):
            self.client.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                                    RemoveFromVersionId=old_version)
            self.client.update_secret_version_stage(SecretId=name, VersionStage="AWSPENDING",
                                                    RemoveFromVersionId=token)
        self._verify(name, token, old_version, expected)

    def _verify(self, name: str, token: str, old_version: str | None, expected: str) -> None:
        with aws.aws_errors(f"{name}: verify the rotation"):
            current = self.client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
            stages = self.client.describe_secret(SecretId=name).get("VersionIdsToStages", {})
        if current["VersionId"] != token or _digest(current["SecretString"]) != expected:
            raise ExternalError(f"{name}: AWSCURRENT is not the new value after the rotation", "run again")
        if old_version and "AWSPREVIOUS" not in stages.get(old_version, []):
            raise ExternalError(f"{name}: the old version is not AWSPREVIOUS", "check the secret's versions")


def rotate_all(names: list[str], dry_run: bool) -> list[dict]:
    rotator = Rotator(dry_run)
    return [rotator.handle(name) for name in names]


def by_result(rows: list[dict]) -> dict:
    """{result: [names]} for the audit line (a name like .../github-token must not read as `token: value`)."""
    grouped: dict = {}
    for row in rows:
        grouped.setdefault(row["result"], []).append(row["name"])
    return grouped


def run(name: str | None, dry: bool, as_json: bool) -> int:
    """rotate_secrets.py: rotate under the cron lock, audit, print, and exit 1 on a failure or an overdue
    secret issued elsewhere (DESIGN §8)."""
    with cli.lock("rotate_secrets"):  # a secret half-way through its stages must not be rotated twice
        rows = rotate_all(select(name), dry)
    failed = [row["name"] for row in rows if not row["ok"]]
    overdue = [row["name"] for row in rows if row["warning"]]
    if not dry:
        cli.audit("failed" if failed else "warning" if overdue else "rotated",
                  secrets=by_result(rows), overdue=overdue,
                  restarted=sorted({agent for row in rows for agent in row["restarted"]}))
    if as_json:
        cli.print_json([{k: v for k, v in row.items() if k != "ok"} for row in rows])
    elif cli.report_wanted(important=dry or any(row["result"] != "rotated" for row in rows)):
        # under cron the table still shows a failure and the secrets issued elsewhere (their age is the reminder)
        cli.print_table(rows, COLUMNS, empty=f"no secrets under {prefix()}")
    if overdue:
        cli.info(f"warning: {len(overdue)} secret(s) issued elsewhere are past rotation_days and need a new value "
                 f"from their issuer: {', '.join(overdue)}")
    if failed:
        cli.info(f"error: {len(failed)} of {len(rows)} secrets failed: {', '.join(failed)}")
    return 1 if failed or overdue else 0

