"""Validated YAML configuration (DESIGN §3).

Each file has a schema here; loading checks it and fails with one line that names the
file, the key and what was expected. Defaults fill keys the file leaves out.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import paths
from lib.errors import ConfigError, UsageError
from lib.fsutil import atomic_write

RUNTIMES = ("local", "command", "lambda", "ecs", "agentcore", "bedrock", "openai")
#: fields a runtime cannot work without (checked per agent, beside the schema)
RUNTIME_REQUIRED = {"bedrock": ("model_id",), "openai": ("base_url", "model")}
#: the longest call an openai agent may wait for (DESIGN §5: local models are slow)
OPENAI_MAX_TIMEOUT = 3600
PHASES = ("research", "plan", "implement", "evaluate")
GATE_METRICS = ("docstring", "complexity", "maintainability", "coverage", "security")
#: (lowest, highest) threshold per gate: percentages and radon's maintainability index run 0-100
GATE_RANGES = {"docstring": (0, 100), "complexity": (0, None), "maintainability": (0, 100), "coverage": (0, 100),
               "security": (0, None)}
KEY_METRICS = ("success_rate", "cycle_time", "cost_per_cycle", "pr_merge_rate", "error_rate")
ALERT_ACTIONS = ("notify-oncall", "notify-team", "page-security")
DEFAULT_PHASE_TIMEOUT = 3600.0


@dataclass(frozen=True)
class Field:
    """A leaf of a schema: accepted types, whether it must be there, allowed values, and a number's range
    (gt: above, ge: at least, le: at most), so that a 0 or negative that would spin or stop a loop is refused."""

    types: tuple
    required: bool = False
    choices: tuple | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def out_of_range(self, value) -> str:
        """What the range allows, when value is a number outside it; "" otherwise."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ""
        if ((self.gt is not None and value <= self.gt) or (self.ge is not None and value < self.ge)
                or (self.le is not None and value > self.le)):
            parts = [f"> {self.gt:g}" if self.gt is not None else "", f">= {self.ge:g}" if self.ge is not None else "",
                     f"<= {self.le:g}" if self.le is not None else ""]
            return " and ".join(part for part in parts if part)
        return ""


class ConfigFileError(ConfigError):
    """A config file that cannot be used; path says which, so that a health check that needs it can say so."""

    def __init__(self, path: Path, what: str, hint: str = "fix the file and run again"):
        super().__init__(f"{path}: {what}", hint)
        self.path = Path(path)


NUM = (int, float)
OPT_STR = (str, type(None))
OPT_NUM = (int, float, type(None))
POSITIVE = {"gt": 0}
NOT_NEGATIVE = {"ge": 0}
AT_LEAST_ONE = {"ge": 1}

SCHEMAS: dict[str, Any] = {
    "settings": {
        "region": Field((str,)),
        "aws": {
            "ecs_cluster": Field((str,)),
            "state_table": Field((str,)),
            "backup_bucket": Field(OPT_STR),
            "budget_name": Field((str,)),
            "cloudwatch_namespace": Field((str,)),
            "sns_topics": {action: Field((str,)) for action in ALERT_ACTIONS},
            "secret_prefix": Field((str,)),
            "cost_allocation_tag": Field((str,)),
            "log_group_prefix": Field((str,)),
        },
        "evolution": {
            "default_target": Field((str,)),
            "heartbeat_seconds": Field(NUM, gt=0, le=3600),
            "stale_after_heartbeats": Field(NUM, **AT_LEAST_ONE),
            "test_command": Field((list, str, type(None))),
            "test_timeout_seconds": Field(NUM, **POSITIVE),
            "agent_context_bytes": Field((int,), **NOT_NEGATIVE),
            "max_patch_bytes": Field((int,), **AT_LEAST_ONE),
            # issue 15 (evo): attempts per cycle and the patch rules on deletions (DESIGN §5)
            "max_attempts": Field((int,), **AT_LEAST_ONE),
            "allow_deletions": Field((bool,)),
            "max_deleted_lines": Field((int,), **NOT_NEGATIVE),
            "max_output_bytes": Field((int,), **AT_LEAST_ONE),
            "max_cost_usd": Field(OPT_NUM, **POSITIVE),
            "candidates": Field((int,), **AT_LEAST_ONE, le=16),  # threads, worktrees and agent calls at once
            "executor": Field((str,), choices=paths.EXECUTORS),
        },
        "executor": {  # DESIGN §10: the stepfunctions executor's AWS resources
            "state_machine": Field((str,)),
            "cluster": Field((str,)),
            "task_definition": Field((str,)),
            "container": Field((str,)),
            "subnets": Field((list,)),
            "security_groups": Field((list,)),
            "role_arn": Field(OPT_STR),
            "max_concurrent": Field((int,), **AT_LEAST_ONE),
            "log_group": Field(OPT_STR),
        },
        "retention": {
            "artifacts_days": Field((int,), **AT_LEAST_ONE),
            "temp_hours": Field((int,), **AT_LEAST_ONE),
            "keep_daily": Field((int,), **AT_LEAST_ONE),
            "keep_weekly": Field((int,), **NOT_NEGATIVE),
            "keep_min": Field((int,), **AT_LEAST_ONE),
            "pre_restore_days": Field((int,), **NOT_NEGATIVE),
            "log_retention_days": Field((int,), **AT_LEAST_ONE),
            "secret_max_age_days": Field((int,), **NOT_NEGATIVE),
            "access_key_max_age_days": Field((int,), **NOT_NEGATIVE),
            "rotation_days": Field((int,), **AT_LEAST_ONE),
        },
        "github": {"repository": Field(OPT_STR), "base_branch": Field((str,))},
        "health": {"check_timeout_seconds": Field(NUM, **POSITIVE), "min_free_disk_gb": Field(NUM, **NOT_NEGATIVE)},
        "monitoring": {"heartbeat_urls": {"*": Field((str,))}, "heartbeat_timeout_seconds": Field(NUM, **POSITIVE)},
    },
    "agents": {
        "agents": [
            {
                "name": Field((str,), required=True),
                "phase": Field((str,), required=True, choices=PHASES),
                "runtime": Field((str,), required=True, choices=RUNTIMES),
                "function_name": Field((str,)),
                "cluster": Field((str,)),
                "service": Field((str,)),
                "task_definition": Field((str,)),
                "container": Field((str,)),
                "subnets": Field((list,)),
                "security_groups": Field((list,)),
                "launch_type": Field((str,), choices=("FARGATE", "EC2", "EXTERNAL")),
                "poll_seconds": Field(NUM, **NOT_NEGATIVE),
                "agent_runtime_id": Field((str,)),
                "qualifier": Field((str,)),
                "restart_timeout_seconds": Field(NUM, **POSITIVE),
                "command": Field((list, str)),
                "health_url": Field((str,)),
                "timeout_seconds": Field(NUM, **POSITIVE),
                "model_id": Field((str,)),
                "max_tokens": Field((int,), **AT_LEAST_ONE),
                "temperature": Field(NUM, **NOT_NEGATIVE),
                "price_per_1k_input_usd": Field(NUM, **NOT_NEGATIVE),
                "price_per_1k_output_usd": Field(NUM, **NOT_NEGATIVE),
                "price_per_1k_cache_read_usd": Field(NUM, **NOT_NEGATIVE),
                "cache_prompt": Field((bool,)),
                "base_url": Field((str,)),
                "model": Field((str,)),
                "api_key_env": Field((str,)),
                "api_key_secret": Field((str,)),
                "prompt_file": Field((str,)),
                "secrets": [Field((str,))],
            }
        ]
    },
    "alerts": {
        "alerts": [
            {
                "name": Field((str,), required=True),
                "metric": Field((str,), required=True),
                "threshold": Field(NUM, required=True),
                "period": Field((int,), required=True, ge=10),  # CloudWatch's shortest alarm period
                "action": Field((str,), required=True, choices=ALERT_ACTIONS),
                "comparison": Field((str,)),
            }
        ]
    },
    "thresholds": {
        "metrics": {
            metric: {
                "label": Field((str,)),
                "metric": Field((str,)),
                "unit": Field((str,)),
                "direction": Field((str,), required=True, choices=("min", "max")),
                "normal": Field(NUM, required=True),
                "alert": Field(NUM, required=True),
                "action": Field((str,)),
            }
            for metric in KEY_METRICS
        }
    },
    "gates": {  # a known metric per key: a misspelled one would silently turn its gate off
        "gates": {
            metric: {
                "threshold": Field(NUM, required=True, ge=low, le=high),
                "direction": Field((str,), required=True, choices=("min", "max")),
                "unit": Field((str,)),
            }
            for metric, (low, high) in GATE_RANGES.items()
        }
    },
    "cost_limits": {"daily_usd": Field(OPT_NUM, **POSITIVE), "per_cycle_usd": Field(OPT_NUM, **POSITIVE)},
    "notify": {
        "pagerduty_url": Field((str,)),
        "timeout_seconds": Field(NUM, **POSITIVE),
        "routes": {
            "*": [
                {
                    "pagerduty": {
                        "routing_key_env": Field((str,)),
                        "routing_key_secret": Field((str,)),
                        "cloudwatch_url_env": Field((str,)),
                        "cloudwatch_url_secret": Field((str,)),
                    },
                    "slack": {"webhook_url_env": Field((str,)), "webhook_url_secret": Field((str,))},
                }
            ]
        },
    },
}

DEFAULTS: dict[str, Any] = {
    "settings": {
        "region": "us-east-1",
        "aws": {
            "ecs_cluster": "t-developer",
            "state_table": "t-developer-state",
            "backup_bucket": "t-developer-backups",
            "budget_name": "t-developer-daily",
            "cloudwatch_namespace": "TDeveloper",
            "sns_topics": {
                "notify-oncall": "t-developer-notify-oncall",
                "notify-team": "t-developer-notify-team",
                "page-security": "t-developer-page-security",
            },
            "secret_prefix": "t-developer/",
            "cost_allocation_tag": "agent",
            "log_group_prefix": "/t-developer/",
        },
        "evolution": {
            "default_target": "packages/agents",
            "heartbeat_seconds": 5,
            "stale_after_heartbeats": 2,
            "test_command": "auto",
            "test_timeout_seconds": 900,
            "agent_context_bytes": 200000,
            "max_patch_bytes": 1000000,
            "max_attempts": 3,
            "allow_deletions": False,
            "max_deleted_lines": 400,
            "max_output_bytes": 5000000,
            "max_cost_usd": None,
            "candidates": 1,
            "executor": "local",
        },
        "executor": {
            "state_machine": "t-developer-evolution",
            "cluster": "t-developer",
            "task_definition": "t-developer-runner",
            "container": "runner",
            "subnets": [],
            "security_groups": [],
            "role_arn": None,
            "max_concurrent": 10,
            "log_group": None,
        },
        "retention": {
            "artifacts_days": 90,
            "temp_hours": 24,
            "keep_daily": 7,
            "keep_weekly": 4,
            "keep_min": 3,
            "pre_restore_days": 7,
            "log_retention_days": 30,
            "secret_max_age_days": 90,
            "access_key_max_age_days": 90,
            "rotation_days": 90,
        },
        "github": {"repository": None, "base_branch": "main"},
        "health": {"check_timeout_seconds": 10, "min_free_disk_gb": 1},
        "monitoring": {"heartbeat_urls": {}, "heartbeat_timeout_seconds": 5},
    },
    "agents": {"agents": []},
    "alerts": {"alerts": []},
    "thresholds": {"metrics": {}},
    "gates": {"gates": {}},
    "cost_limits": {"daily_usd": None, "per_cycle_usd": None},
    "notify": {"pagerduty_url": "https://events.pagerduty.com/v2/enqueue", "timeout_seconds": 10, "routes": {}},
}

OPTIONAL_FILES = {"cost_limits", "notify"}
#: notify.yaml names each credential by where it lives, never by value
CREDENTIAL_SOURCES = {"pagerduty": ("routing_key", "cloudwatch_url"), "slack": ("webhook_url",)}
REQUIRED_CREDENTIALS = {"pagerduty": "routing_key", "slack": "webhook_url"}
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECRET_NAME = re.compile(r"(?!.*://)[\w/+=.@:-]+")  # a name or an ARN, not a URL
_KEY_SHAPE = re.compile(r"[A-Za-z0-9]{32}")  # a PagerDuty integration key, pasted where its name belongs
_URL_OR_PLACEHOLDER = re.compile(r"(https?://|\$\{)\S+")


#: run_evolution.py --agents FILE: the registry of this process, instead of config/agents.yaml
_agents_file: Path | None = None


def use_agents_file(path: Path | None) -> None:
    """Read the agent registry from path (same shape as agents.yaml) in this process; None: config/."""
    global _agents_file
    _agents_file = Path(path).resolve() if path else None


def path_of(name: str) -> Path:
    if name == "agents" and _agents_file is not None:
        return _agents_file
    return paths.config_dir() / f"{name}.yaml"


def _type_names(types: tuple) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "true/false", list: "list", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def validate(name: str, data: Any, schema: Any = None, where: str = "") -> None:
    """Check data against a schema node; raise ConfigError naming file, key and expectation."""
    schema = SCHEMAS[name] if schema is None else schema
    file = path_of(name)

    def fail(what: str) -> None:
        raise ConfigFileError(file, f"{where or 'top level'}: {what}")

    if isinstance(schema, Field):
        if isinstance(data, bool) and bool not in schema.types:
            fail(f"expected {_type_names(schema.types)}, got {data!r}")
        if not isinstance(data, schema.types):
            fail(f"expected {_type_names(schema.types)}, got {type(data).__name__} {data!r}")
        if schema.choices and data not in schema.choices:
            fail(f"expected one of {', '.join(schema.choices)}, got {data!r}")
        if allowed := schema.out_of_range(data):
            fail(f"expected a number {allowed}, got {data!r}")
        return
    if isinstance(schema, list):
        if not isinstance(data, list):
            fail(f"expected a list, got {type(data).__name__}")
        for index, item in enumerate(data):
            validate(name, item, schema[0], f"{where}[{index}]")
        return
    if not isinstance(data, dict):
        fail(f"expected a mapping, got {type(data).__name__}")
    for key, value in data.items():
        child = schema.get(key, schema.get("*"))
        if child is None:
            fail(f"unknown key {key!r} (known: {', '.join(k for k in schema if k != '*')})")
        validate(name, value, child, f"{where}.{key}" if where else str(key))
    for key, child in schema.items():
        if isinstance(child, Field) and child.required and key not in data:
            fail(f"missing required key {key!r}")


def _check_runtime_fields(data: dict, file: Path) -> None:
    """Each agent carries the fields its runtime needs (bedrock: model_id; openai: base_url and model, a
    timeout up to an hour, one key source), named with file and index."""
    for index, agent in enumerate(data.get("agents") or []):
        for key in RUNTIME_REQUIRED.get(agent["runtime"], ()):
            if not agent.get(key):
                raise ConfigFileError(file, f"agents[{index}]: runtime {agent['runtime']} needs {key!r}")
        if agent["runtime"] != "openai":
            continue
        if not re.match(r"https?://[^/\s]+", agent["base_url"]):
            raise ConfigFileError(file, f"agents[{index}].base_url: expected an http(s) URL, got "
                                        f"{agent['base_url']!r}")
        if float(agent.get("timeout_seconds") or 0) > OPENAI_MAX_TIMEOUT:
            raise ConfigFileError(file, f"agents[{index}].timeout_seconds: at most {OPENAI_MAX_TIMEOUT} for an "
                                        "openai agent")
        if agent.get("api_key_env") and not _ENV_NAME.fullmatch(agent["api_key_env"]):
            raise ConfigFileError(file, f"agents[{index}].api_key_env: expected the name of an environment "
                                        "variable (A-Z, 0-9, _)", "never the key itself")
        if agent.get("api_key_env") and agent.get("api_key_secret"):
            raise ConfigFileError(file, f"agents[{index}]: api_key_env and api_key_secret both given",
                                  "name one source of the key")


def _check_one_agent_per_phase(data: dict, file: Path) -> None:
    """DESIGN §3: one agent per phase, except implement candidates when evolution.candidates > 1."""
    seen: dict[str, str] = {}
    for index, agent in enumerate(data.get("agents") or []):
        phase = agent["phase"]
        if phase in seen and not (phase == "implement" and settings()["evolution"]["candidates"] > 1):
            raise ConfigFileError(file, f"agents[{index}]: a second agent for phase {phase} "
                                        f"({agent['name']}, after {seen[phase]})",
                                  "one agent per phase; several implement agents only with "
                                  "evolution.candidates > 1 in settings.yaml")
        seen.setdefault(phase, agent["name"])


def _check_heartbeat_urls(data: dict) -> None:
    """Each heartbeat is a URL, or starts with a ${VAR} placeholder that the environment fills."""
    for job, url in ((data.get("monitoring") or {}).get("heartbeat_urls") or {}).items():
        if not _URL_OR_PLACEHOLDER.fullmatch(url):
            raise ConfigError(f"{path_of('settings')}: monitoring.heartbeat_urls.{job}: expected an http(s) URL "
                              f"(or ${{VAR}} from the environment), got {url!r}", "fix the file and run again")


def _notify_routes(data: Any):
    """(where, kind, fields) of every route entry of notify.yaml that is shaped as a mapping."""
    routes = data.get("routes") if isinstance(data, dict) else None
    for action, entries in (routes.items() if isinstance(routes, dict) else ()):
        for index, entry in enumerate(entries if isinstance(entries, list) else ()):
            for kind, fields in (entry.items() if isinstance(entry, dict) else ()):
                if isinstance(fields, dict):
                    yield f"routes.{action}[{index}].{kind}", kind, fields


def _refuse_literal_credentials(data: Any) -> None:
    """routing_key: R0... or webhook_url: https://hooks... in the file: refused, with what to write instead
    (checked before the schema, which would only call the key unknown)."""
    for where, kind, fields in _notify_routes(data):
        for name in CREDENTIAL_SOURCES.get(kind, ()):
            if name in fields:
                raise ConfigError(f"{path_of('notify')}: {where}.{name}: a literal key or URL is refused",
                                  f"name an environment variable ({name}_env) or a Secrets Manager secret "
                                  f"({name}_secret)")


def _check_notify(data: dict) -> None:
    """Known alert actions, one route kind per entry, one source per credential, given by name."""
    file = path_of("notify")

    def fail(where: str, what: str) -> None:
        raise ConfigError(f"{file}: {where}: {what}", "fix the file and run again")

    for action, entries in data.get("routes", {}).items():
        if action not in ALERT_ACTIONS:
            fail(f"routes.{action}", f"unknown alert action (known: {', '.join(ALERT_ACTIONS)})")
        for index, entry in enumerate(entries):
            if len(entry) != 1:
                fail(f"routes.{action}[{index}]", "expected exactly one of pagerduty, slack")
    for where, kind, fields in _notify_routes(data):
        for name in CREDENTIAL_SOURCES[kind]:
            given = [key for key in (f"{name}_env", f"{name}_secret") if key in fields]
            if len(given) > 1 or (not given and name == REQUIRED_CREDENTIALS[kind]):
                fail(where, f"expected one of {name}_env, {name}_secret")
            for key in given:
                if _KEY_SHAPE.fullmatch(fields[key]):
                    fail(f"{where}.{key}", "this looks like a key itself: a literal key is refused, give the "
                                           "name of the variable or secret that holds it")
                if not (_ENV_NAME if key.endswith("_env") else _SECRET_NAME).fullmatch(fields[key]):
                    fail(f"{where}.{key}", "expected the name of an environment variable (A-Z, 0-9, _)"
                         if key.endswith("_env") else "expected a Secrets Manager secret name or ARN")
    if not data.get("pagerduty_url", "https://").startswith(("https://", "http://")):
        fail("pagerduty_url", f"expected an http(s) URL, got {data['pagerduty_url']!r}")


def _merge(defaults: Any, data: Any) -> Any:
    if isinstance(defaults, dict) and isinstance(data, dict):
        merged = copy.deepcopy(defaults)
        for key, value in data.items():
            merged[key] = _merge(defaults.get(key), value) if key in defaults else value
        return merged
    return data


class DuplicateKey(Exception):
    """A mapping names a key twice; PyYAML would silently keep the last one."""

    def __init__(self, key, first_line: int, second_line: int):
        super().__init__(f"key {key!r} appears twice, at lines {first_line} and {second_line}")


@functools.cache
def _strict_loader():
    """PyYAML's SafeLoader (libyaml's parser when there is one: ten times faster on a large agents.yaml), but
    a key given twice in one mapping is refused (built lazily: yaml is heavy)."""
    import yaml

    class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<:` merges are overridden on purpose
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise DuplicateKey(key, seen[key], line)
                    seen[key] = line
                except TypeError:  # an unhashable key: the constructor below says what is wrong
                    pass
            return super().construct_mapping(node, deep)

    return StrictLoader


def read_yaml(path: Path, text: str | None = None) -> Any:
    """One YAML file (or its text, already read); a syntax error or a duplicated key is one ConfigFileError
    naming file and line."""
    import yaml

    try:
        if text is not None:
            return yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except DuplicateKey as twice:
        raise ConfigFileError(path, str(twice), "keep one of them and run again") from None
    except yaml.YAMLError as bad:
        mark = getattr(bad, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigFileError(path, f"not valid YAML{at}: {getattr(bad, 'problem', bad)}", "fix the file") from None


#: (name, path) -> (SHA-256 of the file's bytes, the loaded document): a file is parsed and validated once
#: per content, however often it is asked for (5,000 agents made pre_evolution_check parse agents.yaml 11 times).
_LOADED: dict[tuple[str, str], tuple[bytes, dict]] = {}
_LOADING = threading.Lock()


def load(name: str) -> dict:
    """Load and validate one config file, with defaults for what it leaves out. The file is read every time
    (an edit is seen at once); it is parsed again only when its bytes changed. Callers get their own copy."""
    import hashlib

    file = path_of(name)
    if not file.exists():
        if name in OPTIONAL_FILES:
            return copy.deepcopy(DEFAULTS[name])
        raise ConfigFileError(file, "missing", "run python scripts/init_evolution.py to create the defaults")
    try:
        raw = file.read_bytes()
    except OSError as failure:
        raise ConfigFileError(file, f"cannot read: {failure.strerror}", "check its permissions") from None
    digest, key = hashlib.sha256(raw).digest(), (name, str(file))
    with _LOADING:  # checks run in threads: the first parses, the others wait for its result
        known = _LOADED.get(key)
        if not known or known[0] != digest:
            known = _LOADED[key] = (digest, _load_text(name, file, raw.decode("utf-8", errors="replace")))
    if name == "agents":  # depends on settings.yaml too, so it is checked outside the per-content cache
        _check_one_agent_per_phase(known[1], file)
    return copy.deepcopy(known[1])


def _load_text(name: str, file: Path, text: str) -> dict:
    data = read_yaml(file, text)
    data = {} if data is None else data
    if name == "notify":
        _refuse_literal_credentials(data)
    validate(name, data)
    if name == "agents":
        _check_runtime_fields(data, file)
    elif name == "settings":
        _check_heartbeat_urls(data)
    elif name == "notify":
        _check_notify(data)
    return _merge(DEFAULTS[name], data)


@functools.cache
def settings() -> dict:
    return load("settings")


def agents() -> list[dict]:
    return load("agents")["agents"]


def gates() -> dict:
    return load("gates")["gates"]


def cost_limits() -> dict:
    return load("cost_limits")


def notify() -> dict | None:
    """config/notify.yaml, or None when there is none (then --notify sends nothing)."""
    return load("notify") if path_of("notify").exists() else None


def phase_timeout() -> float:
    """TIMEOUT_SECONDS, the limit per agent phase (default 3600): the one reader, for the runner and the checks.

    A value that is not a number above 0 is refused (UsageError) rather than silently replaced: `abc` would
    otherwise mean an hour, and 0 an evolution that fails at once.
    """
    raw = os.environ.get("TIMEOUT_SECONDS", "").strip()
    if not raw:
        return DEFAULT_PHASE_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = None
    if value is None or not value > 0 or value == float("inf"):
        raise UsageError(f"TIMEOUT_SECONDS={raw!r}: expected a number of seconds > 0",
                         f"fix it, or unset it for the default {DEFAULT_PHASE_TIMEOUT:g}")
    return value


def write_yaml_atomic(path: Path, data: Any) -> None:
    """Write YAML to a temporary file beside the target and rename it into place."""
    import yaml


    atomic_write(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))


def offsite_bucket() -> str | None:
    """The bucket of the off-site backup copies: TDEV_BACKUP_BUCKET, else settings aws.backup_bucket.

    None when the settings say `backup_bucket: null`: this installation keeps its backups local.
    """
    return os.environ.get("TDEV_BACKUP_BUCKET", "").strip() or settings()["aws"]["backup_bucket"]


def backup_bucket() -> str:
    """The backup bucket, for what cannot do without one (agent I/O, log archives, the bucket audit)."""
    bucket = offsite_bucket()
    if bucket is None:
        raise ConfigError(f"{path_of('settings')}: aws.backup_bucket is null (no bucket)",
                          "name a bucket there or in TDEV_BACKUP_BUCKET")
    return bucket
