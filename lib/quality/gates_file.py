"""Edit config/gates.yaml the way an operator would: one threshold, comments kept (ruamel.yaml
round trip), written atomically, checked against the schema before it replaces the file."""

from __future__ import annotations

import io

from lib import config
from lib.errors import ConfigError, UsageError
from lib.fsutil import atomic_write

# What a gate added by adjust_gates.py looks like when gates.yaml lacks it.
GATE_DEFAULTS = {
    "docstring": {"direction": "min", "unit": "%"},
    "complexity": {"direction": "max", "unit": "cc"},
    "maintainability": {"direction": "min", "unit": "mi"},
    "coverage": {"direction": "min", "unit": "%"},
    "security": {"direction": "max", "unit": "findings"},
}


def validate(metric: str, threshold: float) -> float | int:
    """The threshold as it will be written (an int when whole), or UsageError naming the range."""
    if metric not in config.GATE_METRICS:
        raise UsageError(f"unknown gate metric {metric!r}", f"use one of {', '.join(config.GATE_METRICS)}")
    lower, upper = config.GATE_RANGES[metric]
    if threshold < lower or (upper is not None and threshold > upper):
        span = f"{lower}-{upper}" if upper is not None else f"{lower} or more"
        raise UsageError(f"threshold {threshold:g} out of range for {metric}", f"use a value in {span}")
    return int(threshold) if float(threshold).is_integer() else threshold


def _yaml():
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments, order and quoting stay as the operator wrote them
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def adjust(metric: str, threshold: float, dry_run: bool = False) -> dict:
    """Set gates.<metric>.threshold; returns {metric, old, new, changed, path}. Nothing written on a dry run."""
    new = validate(metric, threshold)
    path = config.path_of("gates")
    yaml = _yaml()
    try:
        config.read_yaml(path)  # a key given twice or a syntax error: the one-line message every config file gives
        document = yaml.load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing", "run python scripts/init_evolution.py to create the defaults") from None
    except ConfigError:
        raise
    except Exception as bad:  # ruamel raises many parser error classes
        raise ConfigError(f"{path}: not valid YAML: {bad}", "fix the file") from None
    if document is None or document.get("gates") is None:
        from ruamel.yaml.comments import CommentedMap

        document = document if document is not None else CommentedMap()
        document["gates"] = CommentedMap()
    gates = document["gates"]
    if metric in gates:
        old = gates[metric].get("threshold")
        gates[metric]["threshold"] = new
    else:
        old = None
        gates[metric] = {"threshold": new, **GATE_DEFAULTS[metric]}
    result = {"metric": metric, "old": old, "new": new, "changed": old != new, "path": str(path),
              "unit": gates[metric].get("unit", GATE_DEFAULTS[metric]["unit"])}
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    import yaml as pyyaml

    config.validate("gates", pyyaml.safe_load(buffer.getvalue()))  # a dry run refuses what the real run would
    if dry_run or not result["changed"]:
        return result
    atomic_write(path, buffer.getvalue(), mode=path.stat().st_mode & 0o777)
    return result
