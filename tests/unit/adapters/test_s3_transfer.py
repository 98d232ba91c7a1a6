"""S3 transfers of lib/adapters/aws.py on a moto server: checksummed PUT, multipart above the single-PUT
limit, and a download that refuses an object whose bytes do not match its checksum."""

from __future__ import annotations

import os

import pytest
from meters import RecordingMeter

from lib.adapters import aws


@pytest.fixture
def bucket(aws):  # noqa: F811 - the conftest fixture of the same name starts moto
    aws_module = __import__("lib.adapters.aws", fromlist=["client"])
    aws_module.client.cache_clear()
    aws_module._session.cache_clear()
    aws_module.client("s3").create_bucket(Bucket="t-developer-backups")
    return "t-developer-backups"


def test_single_put_sends_sha256_and_download_verifies(bucket, tmp_path):
    source = tmp_path / "archive.tar.zst"
    source.write_bytes(os.urandom(200_000))
    sent = aws.upload_file(source, bucket, "daily/2024-01-15/a.tar.zst")
    assert aws.remote_sha256(bucket, "daily/2024-01-15/a.tar.zst") == sent["sha256"]
    target = tmp_path / "copy"
    assert aws.download_file(bucket, "daily/2024-01-15/a.tar.zst", target) == sent["sha256"]
    assert target.read_bytes() == source.read_bytes()


def test_large_files_go_in_parts_and_keep_their_sha256(bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(aws, "SINGLE_PUT_LIMIT", 1024)
    monkeypatch.setattr(aws, "PART_SIZE", 5 * 1024 * 1024)
    source = tmp_path / "big.tar.zst"
    source.write_bytes(os.urandom(6 * 1024 * 1024))
    sent = aws.upload_file(source, bucket, "full/big.tar.zst")
    head = aws.client("s3").head_object(Bucket=bucket, Key="full/big.tar.zst")
    assert head["Metadata"]["sha256"] == sent["sha256"]
    target = tmp_path / "copy"
    assert aws.download_file(bucket, "full/big.tar.zst", target) == sent["sha256"]


def test_a_damaged_object_is_refused_and_nothing_is_left(bucket, tmp_path):
    s3 = aws.client("s3")
    s3.put_object(Bucket=bucket, Key="k", Body=b"tampered", Metadata={"sha256": "0" * 64})
    target = tmp_path / "copy"
    with pytest.raises(aws.AWSError, match="checksum mismatch"):
        aws.download_file(bucket, "k", target)
    assert not target.exists() and not (tmp_path / "copy.part").exists()


def test_transfers_meter_their_bytes_once_even_in_parts(bucket, tmp_path, monkeypatch):
    meter = RecordingMeter()
    small = tmp_path / "small.tar.zst"
    small.write_bytes(os.urandom(300_000))
    aws.upload_file(small, bucket, "daily/small.tar.zst", meter)
    aws.download_file(bucket, "daily/small.tar.zst", tmp_path / "small.copy", meter)
    monkeypatch.setattr(aws, "SINGLE_PUT_LIMIT", 1024)
    monkeypatch.setattr(aws, "PART_SIZE", 5 * 1024 * 1024)
    big = tmp_path / "big.tar.zst"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    aws.upload_file(big, bucket, "full/big.tar.zst", meter)
    assert meter.bars == [("upload daily/small.tar.zst", 300_000, 300_000),
                          ("download daily/small.tar.zst", 300_000, 300_000),
                          ("upload full/big.tar.zst", 6 * 1024 * 1024, 6 * 1024 * 1024)]
