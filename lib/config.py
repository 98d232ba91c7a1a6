"""Validated YAML configuration (DESIGN §3).

Each file has a schema here; loading checks it and fails with one line that names the
file, the key and what was expected. Defaults fill keys the file leaves out.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib import paths
from lib.errors import ConfigError
from lib.fsutil import atomic_write

RUNTIMES = ("local", "command", "lambda", "ecs", "agentcore", "bedrock")
#: fields a runtime cannot work without (checked per agent, beside the schema)
RUNTIME_REQUIRED = {"bedrock": ("model_id",)}
PHASES = ("research", "plan", "implement", "evaluate")
GATE_METRICS = ("docstring", "complexity", "maintainability", "coverage", "security")
ALERT_ACTIONS = ("notify-oncall", "notify-team", "page-security")


@dataclass(frozen=True)
class Field:
    """A leaf of a schema: accepted types, whether it must be there, allowed values."""

    types: tuple
    required: bool = False
    choices: tuple | None = None


NUM = (int, float)
OPT_STR = (str, type(None))
OPT_NUM = (int, float, type(None))

SCHEMAS: dict[str, Any] = {
    "settings": {
        "region": Field((str,)),
        "aws": {
            "ecs_cluster": Field((str,)),
            "state_table": Field((str,)),
            "backup_bucket": Field(OPT_STR),
            "budget_name": Field((str,)),
            "cloudwatch_namespace": Field((str,)),
            "sns_topics": {"*": Field((str,))},
            "secret_prefix": Field((str,)),
            "cost_allocation_tag": Field((str,)),
            "log_group_prefix": Field((str,)),
        },
        "evolution": {
            "default_target": Field((str,)),
            "heartbeat_seconds": Field(NUM),
            "stale_after_heartbeats": Field(NUM),
            "test_command": Field((list, str, type(None))),
            "test_timeout_seconds": Field(NUM),
            "agent_context_bytes": Field((int,)),
            "max_patch_bytes": Field((int,)),
        },
        "retention": {
            "artifacts_days": Field((int,)),
            "temp_hours": Field((int,)),
            "keep_daily": Field((int,)),
            "keep_weekly": Field((int,)),
            "keep_min": Field((int,)),
            "pre_restore_days": Field((int,)),
            "log_retention_days": Field((int,)),
            "secret_max_age_days": Field((int,)),
            "access_key_max_age_days": Field((int,)),
            "rotation_days": Field((int,)),
        },
        "github": {"repository": Field(OPT_STR), "base_branch": Field((str,))},
        "health": {"check_timeout_seconds": Field(NUM), "min_free_disk_gb": Field(NUM)},
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
                "poll_seconds": Field(NUM),
                "agent_runtime_id": Field((str,)),
                "qualifier": Field((str,)),
                "restart_timeout_seconds": Field(NUM),
                "command": Field((list, str)),
                "health_url": Field((str,)),
                "timeout_seconds": Field(NUM),
                "model_id": Field((str,)),
                "max_tokens": Field((int,)),
                "temperature": Field(NUM),
                "price_per_1k_input_usd": Field(NUM),
                "price_per_1k_output_usd": Field(NUM),
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
                "period": Field((int,), required=True),
                "action": Field((str,), required=True, choices=ALERT_ACTIONS),
                "comparison": Field((str,)),
            }
        ]
    },
    "thresholds": {
        "metrics": {
            "*": {
                "label": Field((str,)),
                "metric": Field((str,)),
                "unit": Field((str,)),
                "direction": Field((str,), required=True, choices=("min", "max")),
                "normal": Field(NUM, required=True),
                "alert": Field(NUM, required=True),
                "action": Field((str,)),
            }
        }
    },
    "gates": {
        "gates": {
            "*": {
                "threshold": Field(NUM, required=True),
                "direction": Field((str,), required=True, choices=("min", "max")),
                "unit": Field((str,)),
            }
        }
    },
    "cost_limits": {"daily_usd": Field(OPT_NUM), "per_cycle_usd": Field(OPT_NUM)},
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
    },
    "agents": {"agents": []},
    "alerts": {"alerts": []},
    "thresholds": {"metrics": {}},
    "gates": {"gates": {}},
    "cost_limits": {"daily_usd": None, "per_cycle_usd": None},
}

OPTIONAL_FILES = {"cost_limits"}


def path_of(name: str) -> Path:
    return paths.config_dir() / f"{name}.yaml"


def _type_names(types: tuple) -> str:
    names = {int: "integer", float: "number", str: "string", bool: "true/false", list: "list", type(None): "null"}
    return " or ".join(dict.fromkeys(names.get(t, t.__name__) for t in types))


def validate(name: str, data: Any, schema: Any = None, where: str = "") -> None:
    """Check data against a schema node; raise ConfigError naming file, key and expectation."""
    schema = SCHEMAS[name] if schema is None else schema
    file = path_of(name)

    def fail(what: str) -> None:
        raise ConfigError(f"{file}: {where or 'top level'}: {what}", "fix the file and run again")

    if isinstance(schema, Field):
        if isinstance(data, bool) and bool not in schema.types:
            fail(f"expected {_type_names(schema.types)}, got {data!r}")
        if not isinstance(data, schema.types):
            fail(f"expected {_type_names(schema.types)}, got {type(data).__name__} {data!r}")
        if schema.choices and data not in schema.choices:
            fail(f"expected one of {', '.join(schema.choices)}, got {data!r}")
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


def _check_runtime_fields(data: dict) -> None:
    """Each agent carries the fields its runtime needs (bedrock: model_id), named with file and index."""
    for index, agent in enumerate(data.get("agents") or []):
        for key in RUNTIME_REQUIRED.get(agent["runtime"], ()):
            if not agent.get(key):
                raise ConfigError(f"{path_of('agents')}: agents[{index}]: runtime {agent['runtime']} needs {key!r}",
                                  "fix the file and run again")


def _merge(defaults: Any, data: Any) -> Any:
    if isinstance(defaults, dict) and isinstance(data, dict):
        merged = copy.deepcopy(defaults)
        for key, value in data.items():
            merged[key] = _merge(defaults.get(key), value) if key in defaults else value
        return merged
    return data


def read_yaml(path: Path) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as bad:
        mark = getattr(bad, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(bad, 'problem', bad)}", "fix the file") from None


def load(name: str) -> dict:
    """Load and validate one config file, with defaults for what it leaves out."""
    file = path_of(name)
    if not file.exists():
        if name in OPTIONAL_FILES:
            return copy.deepcopy(DEFAULTS[name])
        raise ConfigError(f"{file}: missing", "run python scripts/init_evolution.py to create the defaults")
    try:
        data = read_yaml(file)
    except OSError as failure:
        raise ConfigError(f"{file}: cannot read: {failure.strerror}") from None
    data = {} if data is None else data
    validate(name, data)
    if name == "agents":
        _check_runtime_fields(data)
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


def write_yaml_atomic(path: Path, data: Any) -> None:
    """Write YAML to a temporary file beside the target and rename it into place."""
    import yaml


    atomic_write(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
