"""What the security audit's rule tests and its script tests share: a fake token, an MCP config
written with a given mode, and the backup bucket as the audit wants it."""

from __future__ import annotations

import json
import os

import boto3

GITHUB_TOKEN_VALUE = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def write_mcp(tdev, servers: dict, mode: int = 0o600) -> None:
    tdev.mcp_config.parent.mkdir(parents=True, exist_ok=True)
    tdev.mcp_config.write_text(json.dumps({"mcpServers": servers}, indent=2))
    os.chmod(tdev.mcp_config, mode)


def secure_backup_bucket() -> None:
    """The backup bucket as the audit wants it: public access blocked, encrypted, versioned."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="t-developer-backups")
    s3.put_public_access_block(Bucket="t-developer-backups", PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket="t-developer-backups", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_bucket_versioning(Bucket="t-developer-backups", VersioningConfiguration={"Status": "Enabled"})
