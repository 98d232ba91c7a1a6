"""Region and retries of lib/adapters/aws.py follow the standard chain (environment, then the profile);
settings.yaml's region and the `standard` retry mode only fill in what the chain leaves unnamed."""

from __future__ import annotations

import pytest

from lib.adapters import aws


@pytest.fixture
def chain(tdev, monkeypatch):
    """A fresh chain per test: the profile file, no region or retry variables; the caches emptied around it."""
    config_file = tdev.base / "aws-config"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    def clear():
        for cached in (aws._chain, aws._session, aws.client, aws.call_client):
            cached.cache_clear()

    clear()
    yield config_file
    clear()


def test_defaults_standard_retries_and_the_settings_region(chain):
    chain.write_text("[default]\noutput = json\n")
    sts = aws.client("sts")
    assert sts.meta.region_name == "us-east-1"
    assert sts.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    assert aws.region_and_source()[1].endswith("settings.yaml (the chain names no region)")


def test_the_profile_names_region_and_retries(chain, monkeypatch):
    chain.write_text("[profile ops]\nregion = eu-west-1\nretry_mode = adaptive\nmax_attempts = 2\n")
    monkeypatch.setenv("AWS_PROFILE", "ops")
    sts = aws.client("sts")
    assert sts.meta.region_name == "eu-west-1"
    assert sts.meta.config.retries == {"mode": "adaptive", "total_max_attempts": 2}
    assert aws.region_and_source() == ("eu-west-1", f"profile ops in {chain}")


def test_the_environment_comes_before_the_profile(chain, monkeypatch):
    chain.write_text("[default]\nregion = eu-west-1\nretry_mode = adaptive\n")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    monkeypatch.setenv("AWS_RETRY_MODE", "legacy")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    sts = aws.client("sts")
    assert (sts.meta.region_name, aws.region_and_source()[1]) == ("ap-south-1", "AWS_DEFAULT_REGION")
    assert sts.meta.config.retries == {"mode": "legacy", "total_max_attempts": 3}


def test_agent_calls_keep_one_attempt_whatever_the_chain_says(chain, monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "7")
    chain.write_text("[default]\nregion = eu-west-1\n")
    assert aws.call_client("lambda", 30).meta.config.retries["total_max_attempts"] == 1


def test_a_profile_that_does_not_exist_is_one_clear_error(chain, monkeypatch):
    chain.write_text("[default]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_PROFILE", "typo")
    with pytest.raises(aws.AWSError, match=r"^read the AWS profile: The config profile \(typo\) could not be found"):
        aws.region()
