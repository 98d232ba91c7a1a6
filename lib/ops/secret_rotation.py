"""Secrets Manager rotation for rotate_secrets.py (DESIGN §8). Never reads a value out loud.

A secret with a rotation Lambda is rotated by Secrets Manager (RotateSecret). Any other
secret of the project gets a new random value through the stages: put it as AWSPENDING,
read it back (the test), move AWSCURRENT to it (the old version becomes AWSPREVIOUS), then
verify the current value is the new one. A secret tagged tdev:rotation=external is issued
elsewhere (a GitHub token): reported with its age, never changed. Values are compared by
digest only; nothing here prints or logs one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid

from lib import config, timeparse
from lib.adapters import aws
from lib.errors import ExternalError, ToolError

EXTERNAL_TAG = ("tdev:rotation", "external")
LAMBDA_TIMEOUT_SECONDS = 120
_SECRET_FIELD = re.compile(r"(?i)password|secret|token|key")

COLUMNS = [("name", "SECRET"), ("method", "METHOD"), ("result", "RESULT"), ("age_before", "AGE BEFORE"),
           ("age_after", "AGE AFTER"), ("detail", "DETAIL")]


def _digest(value: str | bytes) -> str:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).hexdigest()


def age_days(described: dict) -> int | None:
    """Days since the value last changed (rotation or a new value)."""
    moments = [described.get(k) for k in ("LastRotatedDate", "LastChangedDate", "CreatedDate") if described.get(k)]
    if not moments:
        return None
    return (timeparse.utcnow() - max(moments)).days


def prefix() -> str:
    return config.settings()["aws"]["secret_prefix"]


def select(name: str | None) -> list[str]:
    """The secrets to rotate: one by name, or every secret under the project prefix."""
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
                        "give it a rotation Lambda or tag it tdev:rotation=external")
    return json.dumps({**document, **{key: secrets.token_urlsafe(32) for key in fields}})


class Rotator:
    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.client = aws.client("secretsmanager")

    def describe(self, name: str) -> dict:
        with aws.aws_errors(f"describe secret {name}"):
            return self.client.describe_secret(SecretId=name)

    def rotate(self, name: str) -> dict:
        """One secret; a failure is reported in the row, never raised."""
        row = {"name": name, "method": "", "result": "", "age_before": None, "age_after": None, "detail": "",
               "ok": True}
        try:
            described = self.describe(name)
            row["age_before"] = age_days(described)
            tags = aws.tags_to_dict(described.get("Tags", []))
            if tags.get(EXTERNAL_TAG[0]) == EXTERNAL_TAG[1]:
                limit = config.settings()["retention"]["secret_max_age_days"]
                old = row["age_before"] is not None and row["age_before"] > limit
                row.update(method="external", result="not changed", age_after=row["age_before"],
                           detail=f"issued elsewhere; older than {limit} days: renew it" if old else "issued elsewhere")
                return row
            row["method"] = "lambda" if described.get("RotationLambdaARN") else "generated"
            if self.dry_run:
                row["result"] = "would rotate"
                return row
            if row["method"] == "lambda":
                self._by_lambda(name, described)
            else:
                self._by_stages(name, described)
            row.update(result="rotated", age_after=age_days(self.describe(name)), detail="verified")
        except ToolError as failure:
            row.update(result="failed", detail=str(failure), ok=False)
        return row

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
            raise ToolError(f"{name}: a binary secret", "give it a rotation Lambda or tag it tdev:rotation=external")
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
    return [rotator.rotate(name) for name in names]


def by_result(rows: list[dict]) -> dict:
    """{result: [names]} for the audit line (a name like .../github-token must not read as `token: value`)."""
    grouped: dict = {}
    for row in rows:
        grouped.setdefault(row["result"], []).append(row["name"])
    return grouped
