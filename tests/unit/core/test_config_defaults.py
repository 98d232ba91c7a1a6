"""The defaults in lib/config.py and the shipped config/*.yaml say the same (DESIGN §3): a key added to one
and not the other, or a value changed in one place only, fails here."""

from __future__ import annotations

import pytest

from lib import config, paths
from lib.quality import gates_file

SHIPPED = ("settings", "gates", "thresholds", "alerts", "agents")


def shipped(name: str) -> dict:
    return config.read_yaml(paths.CODE_ROOT / "config" / f"{name}.yaml")


def leaves(tree, prefix: str = "") -> dict:
    """{dotted.key: value} of every leaf of a mapping (an empty mapping is a leaf)."""
    if isinstance(tree, dict) and tree:
        found = {}
        for key, value in tree.items():
            found.update(leaves(value, f"{prefix}{key}."))
        return found
    return {prefix.rstrip("."): tree}


def schema_keys(schema, prefix: str = "") -> set[str]:
    """The dotted keys a schema names; a free-keyed mapping ("*") or a list is one leaf."""
    if isinstance(schema, dict) and "*" not in schema:
        return set().union(*(schema_keys(value, f"{prefix}{key}.") for key, value in schema.items()))
    return {prefix.rstrip(".")}


def test_shipped_settings_hold_every_default_with_its_value():
    assert leaves(shipped("settings")) == leaves(config.DEFAULTS["settings"])


def test_every_settings_key_of_the_schema_has_a_default_and_no_default_lacks_a_key():
    assert set(leaves(config.DEFAULTS["settings"])) == schema_keys(config.SCHEMAS["settings"])


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_file_validates_and_names_the_top_keys_of_its_defaults(name):
    data = shipped(name)
    config.validate(name, data)
    assert set(data) == set(config.DEFAULTS[name])
    for key, default in config.DEFAULTS[name].items():
        assert type(data[key]) is type(default), key


def test_loading_the_shipped_files_adds_nothing_they_do_not_say():
    for name in SHIPPED:
        assert config._merge(config.DEFAULTS[name], shipped(name)) == shipped(name), name


def test_shipped_gates_match_what_adjust_gates_adds_for_a_missing_gate():
    gates = shipped("gates")["gates"]
    assert set(gates) == set(config.GATE_METRICS) == set(gates_file.GATE_DEFAULTS) == set(config.GATE_RANGES)
    for metric, gate in gates.items():
        assert {"direction": gate["direction"], "unit": gate["unit"]} == gates_file.GATE_DEFAULTS[metric], metric


def test_shipped_thresholds_cover_the_key_metrics():
    assert set(shipped("thresholds")["metrics"]) == set(config.KEY_METRICS)


def test_shipped_agents_run_one_per_phase_in_phase_order():
    assert [agent["phase"] for agent in shipped("agents")["agents"]] == list(config.PHASES)
