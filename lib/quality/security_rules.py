"""The security audit's rules: findings (severity, rule, where, fix) about this installation.

Local rules always run: permissions, plaintext secrets in config, the MCP config and env
files, and MCP servers that would import the mcp/ shim. --full adds AWS (the backup
bucket, secret rotation age, IAM access key age, log group retention) and GitHub (branch
protection of the default branch). A rule whose service cannot be asked is reported as
an error (UNKNOWN), never as a pass. No secret value is ever shown: only its first
characters and its length.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lib import checks, config, paths
from lib.adapters import aws, github, mcp_config
from lib.errors import NotFound, ToolError
from lib.store import open_store
from lib.timeparse import iso, utcnow

META_KEY = "security-findings"
META_DETAIL_KEY = "security-audit"
TOKEN_FORMATS = (
    ("AWS access key id", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("AWS secret access key", re.compile(r"(?i)aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+=]{40})\b")),
    ("GitHub token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})\b")),
)
_SECRET_KEY = re.compile(r"(?i)(token|password|passwd|secret|api[_-]?key|access[_-]?key|authorization)$")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([\w.-]+)\s*[:=]\s*[\"']?([^\"'#]*)")
#: notify.yaml's keys that name a Secrets Manager secret (its schema refuses a literal value there)
_SECRET_REFERENCES = {f"{name}_secret" for names in config.CREDENTIAL_SOURCES.values() for name in names}
PUBLIC_ACCESS_FIX = ("aws s3api put-public-access-block --bucket {bucket} --public-access-block-configuration "
                     "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true")
ENCRYPTION_FIX = ("aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-configuration "
                  "'{{\"Rules\":[{{\"ApplyServerSideEncryptionByDefault\":{{\"SSEAlgorithm\":\"aws:kms\"}}}}]}}'")
_PLACEHOLDER = re.compile(r"^(|null|none|~|changeme|<.*>|\$\{?[A-Za-z_][\w:-]*\}?)$", re.IGNORECASE)


@dataclass
class Finding:
    severity: str  # critical | warning
    rule: str
    where: str
    fix: str
    detail: str = ""


@dataclass
class Rule:
    name: str
    full_only: bool
    func: Callable[[], list[Finding]]


RULES: list[Rule] = []


def rule(name: str, full_only: bool = False):
    def register(func):
        RULES.append(Rule(name, full_only, func))
        return func

    return register


def masked(value: str) -> str:
    """What a finding may show of a secret: its first four characters and its length."""
    return f"{value[:4]}… ({len(value)} chars)"


# ---- local rules ---------------------------------------------------------------------------

def _audited_paths() -> list[tuple[Path, bool]]:
    """(path, may hold secrets) for the folders and files the audit looks at."""
    items = [(paths.history_dir(), False), (paths.config_dir(), False), (paths.mcp_config(), True)]
    items += [(path, False) for path in sorted(paths.config_dir().glob("*.yaml"))]
    items += [(path, True) for path in env_files()]
    items += [(paths.history_dir() / name, False) for name in ("state.db", "audit.log")]
    return [(path, secret) for path, secret in items if path.exists()]


@rule("permissions")
def permissions() -> list[Finding]:
    findings = []
    for path, holds_secrets in _audited_paths():
        mode = stat.S_IMODE(path.stat().st_mode)
        fix = f"chmod {'700' if path.is_dir() else '600'} {path}"
        if mode & stat.S_IWOTH:
            findings.append(Finding("critical", "permissions", str(path), fix,
                                    f"mode {mode:o}: every user can change it"))
        elif mode & stat.S_IWGRP:
            findings.append(Finding("warning", "permissions", str(path), fix,
                                    f"mode {mode:o}: the group can change it"))
        elif holds_secrets and mode & (stat.S_IROTH | stat.S_IRGRP):
            findings.append(Finding("warning", "permissions", str(path), fix,
                                    f"mode {mode:o}: other users can read it and it may hold tokens"))
    return findings


def env_files() -> list[Path]:
    found = []
    for folder in dict.fromkeys((paths.root(), paths.config_dir())):
        for pattern in (".env", ".env.*", "*.env"):
            found += [path for path in folder.glob(pattern) if path.is_file()]
    return sorted(set(found))


def _scan_text(path: Path, text: str) -> list[Finding]:
    """Token formats anywhere, and secret-named keys with literal values (YAML, env files)."""
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{path}:{number}"
        hits = [(what, match.group(match.lastindex or 0)) for what, pattern in TOKEN_FORMATS
                for match in pattern.finditer(line)]
        assignment = _ASSIGNMENT.match(line)
        if (not hits and assignment and _SECRET_KEY.search(assignment.group(1))
                and assignment.group(1) not in _SECRET_REFERENCES):
            value = assignment.group(2).strip()
            if not _PLACEHOLDER.match(value) and path.suffix != ".json":
                hits.append((f"value of {assignment.group(1)}", value))
        for what, value in hits:
            findings.append(Finding("critical", "plaintext-secrets", where,
                                    "move it to the environment or AWS Secrets Manager, reference it as ${VAR}, "
                                    "and rotate it: it has been on disk", f"{what} {masked(value)}"))
    return findings


def _mcp_literals(path: Path, reported: set[str]) -> list[Finding]:
    """Literal values of secret-named env entries and headers in the MCP config (not yet reported)."""
    try:
        servers = mcp_config.read_raw(path)["mcpServers"]
    except ToolError:
        return []
    findings = []
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            continue
        for section in ("env", "headers"):
            for key, value in (entry.get(section) or {}).items():
                value = str(value)
                if not _SECRET_KEY.search(key) or "${" in value or not value.strip():
                    continue
                if any(token in value for token in reported):
                    continue
                findings.append(Finding(
                    "critical", "plaintext-secrets", f"{path}: mcpServers.{name}.{section}.{key}",
                    f'write "{key}": "...${{VAR}}" and export VAR in the environment', f"literal {masked(value)}"))
    return findings


def _tokens(text: str) -> set[str]:
    return {match.group(match.lastindex or 0) for _, pattern in TOKEN_FORMATS for match in pattern.finditer(text)}


@rule("plaintext-secrets")
def plaintext_secrets() -> list[Finding]:
    mcp_file = paths.mcp_config()
    files = sorted(paths.config_dir().glob("*.yaml")) + env_files() + ([mcp_file] if mcp_file.is_file() else [])
    findings = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as failure:
            raise ToolError(f"cannot read {path}: {failure.strerror}") from None
        findings += _scan_text(path, text)
        if path == mcp_file:
            findings += _mcp_literals(path, _tokens(text))
    return findings


@rule("mcp-shim-shadowing")
def mcp_shim_shadowing() -> list[Finding]:
    """`python -m server` started from the project root imports our mcp/ shim instead of the SDK."""
    if not paths.mcp_config().is_file():
        return []
    findings = []
    root = paths.root().resolve()
    for spec in mcp_config.load():
        if spec.transport != "stdio" or not spec.command or "-m" not in spec.args:
            continue
        if not Path(spec.command).name.startswith("python"):
            continue
        where = f"{paths.mcp_config()}: mcpServers.{spec.name}"
        fix = f'add "cwd": "${{HOME}}" to {spec.name} (any folder but the project root)'
        if not spec.cwd:
            findings.append(Finding("warning", "mcp-shim-shadowing", where, fix,
                                    "python -m without cwd: a client started in the project root imports mcp/ shim"))
        elif Path(spec.cwd).expanduser().resolve() == root:
            findings.append(Finding("critical", "mcp-shim-shadowing", where, fix,
                                    "python -m with the project root as cwd imports the mcp/ shim, not the SDK"))
    return findings


# ---- AWS and GitHub rules (--full) ---------------------------------------------------------

def _client_error(error: Exception, *codes: str) -> bool:
    from botocore.exceptions import ClientError


    return isinstance(error, ClientError) and aws.is_error(error, *codes)


@rule("backup-bucket", full_only=True)
def backup_bucket() -> list[Finding]:
    from botocore.exceptions import ClientError


    bucket = config.backup_bucket()
    s3 = aws.client("s3")
    where = f"s3://{bucket}"
    try:
        with aws.aws_errors(f"read the settings of {where}"):
            s3.head_bucket(Bucket=bucket)
    except aws.AWSNotFound:
        return [Finding("warning", "backup-bucket", where, "python scripts/backup.py --daily creates it",
                        "the backup bucket does not exist")]
    findings = []
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        open_settings = [key for key, value in block.items() if not value]
    except ClientError as error:
        if not _client_error(error, "NoSuchPublicAccessBlockConfiguration"):
            raise aws.translate(error, f"read the public access block of {where}") from None
        open_settings = ["no public access block"]
    if open_settings:
        findings.append(Finding("critical", "backup-bucket", where, PUBLIC_ACCESS_FIX.format(bucket=bucket),
                                f"public access not blocked: {', '.join(open_settings)}"))
    try:
        s3.get_bucket_encryption(Bucket=bucket)
    except ClientError as error:
        if not _client_error(error, "ServerSideEncryptionConfigurationNotFoundError"):
            raise aws.translate(error, f"read the encryption of {where}") from None
        findings.append(Finding("warning", "backup-bucket", where, ENCRYPTION_FIX.format(bucket=bucket),
                                "no default encryption"))
    with aws.aws_errors(f"read the versioning of {where}"):
        versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    if versioning != "Enabled":
        findings.append(Finding("warning", "backup-bucket", where,
                                f"aws s3api put-bucket-versioning --bucket {bucket} --versioning-configuration "
                                "Status=Enabled", f"versioning {versioning or 'never enabled'}: a deleted or "
                                "overwritten backup cannot be recovered"))
    return findings


def _age_days(moment: datetime | None, now: datetime) -> float:
    if moment is None:
        return 0.0
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return (now - moment) / timedelta(days=1)


@rule("secret-rotation", full_only=True)
def secret_rotation() -> list[Finding]:

    settings = config.settings()
    prefix, limit = settings["aws"]["secret_prefix"], settings["retention"]["secret_max_age_days"]
    client = aws.client("secretsmanager")
    now = utcnow()
    findings = []
    with aws.aws_errors("list the secrets"):
        secrets = [s for s in aws.paginate(client, "list_secrets", "SecretList") if s["Name"].startswith(prefix)]
        for secret in secrets:
            versions = client.list_secret_version_ids(SecretId=secret["ARN"], MaxResults=100)["Versions"]
            current = [v.get("CreatedDate") for v in versions if "AWSCURRENT" in v.get("VersionStages", [])]
            changed = max(filter(None, [*current, secret.get("LastRotatedDate"), secret.get("CreatedDate")]),
                          default=None)
            age = _age_days(changed, now)
            if age <= limit:
                continue
            external = aws.tags_to_dict(secret.get("Tags")).get("tdev:rotation") == "external"
            fix = ("issue a new value where it comes from (it is tagged tdev:rotation=external) and put it with "
                   f"aws secretsmanager put-secret-value --secret-id {secret['Name']}" if external
                   else "python scripts/rotate_secrets.py --all")
            findings.append(Finding("warning", "secret-rotation", f"secret {secret['Name']}", fix,
                                    f"value is {age:.0f} days old (limit {limit})"))
    return findings


@rule("iam-access-keys", full_only=True)
def iam_access_keys() -> list[Finding]:

    limit = config.settings()["retention"]["access_key_max_age_days"]
    iam = aws.client("iam")
    now = utcnow()
    findings = []
    with aws.aws_errors("list the IAM access keys"):
        for user in aws.paginate(iam, "list_users", "Users"):
            for key in aws.paginate(iam, "list_access_keys", "AccessKeyMetadata", UserName=user["UserName"]):
                age = _age_days(key.get("CreateDate"), now)
                if key.get("Status") == "Active" and age > limit:
                    key_id = key["AccessKeyId"]
                    findings.append(Finding(
                        "warning", "iam-access-keys", f"IAM user {user['UserName']} key …{key_id[-4:]}",
                        f"aws iam create-access-key --user-name {user['UserName']}, switch to it, then "
                        f"aws iam delete-access-key --user-name {user['UserName']} --access-key-id <old key id>",
                        f"active key {age:.0f} days old (limit {limit})"))
    return findings


def _project_log_group(name: str, functions: set[str]) -> bool:
    """Groups of the project: named after it, or the Lambda groups of its agents."""
    return "t-developer" in name or (name.startswith("/aws/lambda/") and name[len("/aws/lambda/"):] in functions)


@rule("log-retention", full_only=True)
def log_retention() -> list[Finding]:

    days = config.settings()["retention"]["log_retention_days"]
    functions = {agent["function_name"] for agent in config.agents() if agent.get("function_name")}
    findings = []
    with aws.aws_errors("list the CloudWatch log groups"):
        groups = aws.paginate(aws.client("logs"), "describe_log_groups", "logGroups")
    for group in groups:
        name = group["logGroupName"]
        if _project_log_group(name, functions) and not group.get("retentionInDays"):
            findings.append(Finding("warning", "log-retention", f"log group {name}",
                                    f"aws logs put-retention-policy --log-group-name {name} --retention-in-days {days}",
                                    "logs are kept forever (no retention)"))
    return findings


@rule("branch-protection", full_only=True)
def branch_protection() -> list[Finding]:

    if not github.configured():
        raise Skipped("GitHub not configured (GITHUB_TOKEN, GITHUB_REPOSITORY)")
    client = github.Client.from_env()
    branch = client.get(client.repo_path()).get("default_branch") or config.settings()["github"]["base_branch"]
    where = f"github {client.repo} branch {branch}"
    settings_url = f"https://github.com/{client.repo}/settings/branches"
    try:
        rules = client.get(client.repo_path(f"/branches/{branch}/protection"))
    except NotFound:
        return [Finding("critical", "branch-protection", where, f"protect it: {settings_url} (require reviews "
                        "and the CI status checks)", "the default branch is not protected: auto-evolution PRs "
                        "and pushes land without review")]
    missing = [what for key, what in (("required_pull_request_reviews", "required reviews"),
                                      ("required_status_checks", "required status checks")) if not rules.get(key)]
    if missing:
        return [Finding("warning", "branch-protection", where, f"add {' and '.join(missing)}: {settings_url}",
                        f"protected, but without {' and '.join(missing)}")]
    return []


class Skipped(Exception):
    """A rule that does not apply here (GitHub not configured); reported, not counted."""


# ---- running -----------------------------------------------------------------------------

def run(full: bool) -> dict:
    """Every rule that applies; the document that security_audit.py prints."""
    findings: list[Finding] = []
    errors, skipped, ran = [], [], []
    for item in RULES:
        if item.full_only and not full:
            continue
        try:
            findings += item.func()
            ran.append(item.name)
        except Skipped as reason:
            skipped.append({"rule": item.name, "reason": str(reason)})
        except ToolError as failure:
            errors.append({"rule": item.name, "error": str(failure)})
    findings.sort(key=lambda f: (-checks.SEVERITY[f.severity], f.rule, f.where))
    levels = [f.severity for f in findings] + ["unknown"] * len(errors)
    status = checks.worst_status(levels)
    return {"status": status, "full": full, "findings": [asdict(f) for f in findings], "errors": errors,
            "skipped": skipped, "rules": ran, "time": iso()}


def record(document: dict) -> None:
    """The count of findings feeds the SecurityGateFailures metric; the summary feeds health."""

    store = open_store(create=True)
    store.set_meta(META_KEY, len(document["findings"]))
    counts = {level: sum(f["severity"] == level for f in document["findings"]) for level in ("critical", "warning")}
    store.set_meta(META_DETAIL_KEY, {"time": document["time"], "status": document["status"],
                                     "full": document["full"], **counts, "errors": len(document["errors"])})


def report(document: dict) -> checks.Report:
    """The plugin line: the rules with findings (and those that could not be checked), counts as perfdata."""
    findings, errors = document["findings"], document["errors"]
    failing = [{"name": f["rule"], "status": f["severity"], "summary": f"{f['where']}: {f['detail'] or f['fix']}"}
               for f in findings]
    failing += [{"name": e["rule"], "status": checks.UNKNOWN, "summary": f"could not be checked: {e['error']}"}
                for e in errors]
    context = ", ".join(filter(None, [f"{len(findings)} finding(s)", f"{len(document['rules'])} rule(s) run",
                                      f"{len(document['skipped'])} skipped" if document["skipped"] else ""]))
    perf = [checks.Perf("critical", sum(f["severity"] == checks.CRITICAL for f in findings), crit="0"),
            checks.Perf("warning", sum(f["severity"] == checks.WARNING for f in findings), warn="0"),
            checks.Perf("unchecked", len(errors), warn="0")]
    return checks.Report("SECURITY", document["status"], failing, context, perf)
