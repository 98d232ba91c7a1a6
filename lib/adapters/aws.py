"""One place for AWS: lazily made boto3 clients and the translation of botocore errors.

Like Ansible's module_utils/botocore.py: every script gets its clients from client(),
wraps calls in `with aws_errors("what it was doing"):`, and an operator sees one line
that says what failed and what to do, never a botocore traceback. Region and retries follow
the standard chain (environment, then the profile), as `aws` and boto3 do; settings.yaml's
region and botocore's `standard` retry mode only fill in what the chain leaves unnamed.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from lib import config
from lib.errors import ExternalError, NotFound

_NOT_FOUND_CODES = {
    "ResourceNotFoundException", "NoSuchBucket", "NoSuchKey", "NotFound", "404", "ServiceNotFoundException",
    "ClusterNotFoundException", "NoSuchEntity", "ResourceNotFound", "NotFoundException",
}  # fmt: skip
_HINTS = {
    "ExpiredToken": "your session expired: refresh credentials (aws sso login, or new keys) and run again",
    "ExpiredTokenException": "your session expired: refresh credentials (aws sso login, or new keys) and run again",
    "AccessDenied": "the identity lacks permission: check the IAM policy of AWS_PROFILE or the role",
    "AccessDeniedException": "the identity lacks permission: check the IAM policy of AWS_PROFILE or the role",
    "UnauthorizedOperation": "the identity lacks permission: check the IAM policy",
    "UnrecognizedClientException": "the credentials are not valid: check AWS_PROFILE or the access keys",
    "InvalidClientTokenId": "the credentials are not valid: check AWS_PROFILE or the access keys",
    "ThrottlingException": "AWS throttled the calls even after retries: wait a minute and run again",
    "Throttling": "AWS throttled the calls even after retries: wait a minute and run again",
    "TooManyRequestsException": "AWS throttled the calls even after retries: wait a minute and run again",
}


class AWSError(ExternalError):
    """An AWS call failed; code is the service's error code."""

    def __init__(self, message: str, hint: str | None = None, code: str = ""):
        super().__init__(message, hint)
        self.code = code


class AWSNotFound(NotFound):
    """The AWS resource named does not exist."""


@functools.cache
def _chain():
    """botocore's view of the environment and the profile (AWS_PROFILE, AWS_CONFIG_FILE), without a network call."""
    import botocore.session

    return botocore.session.Session()


def _from_chain(key: str, *variables: str) -> tuple[str | None, str]:
    """(value, where it was named) of a setting of the standard chain: the variables, then the profile."""
    for variable in variables:
        if value := os.environ.get(variable, "").strip():
            return value, variable
    chain = _chain()
    with aws_errors("read the AWS profile"):
        value = chain.get_scoped_config().get(key)
    if not value:
        return None, ""
    profile = chain.get_config_variable("profile") or "default"
    return str(value), f"profile {profile} in {chain.get_config_variable('config_file')}"


def region_and_source() -> tuple[str, str]:
    """The region of every client and where it comes from: AWS_REGION, AWS_DEFAULT_REGION, the profile,
    and settings.yaml only when none of them names one."""
    value, source = _from_chain("region", "AWS_REGION", "AWS_DEFAULT_REGION")
    if value:
        return value, source
    return config.settings()["region"], f"{config.path_of('settings')} (the chain names no region)"


def region() -> str:
    return region_and_source()[0]


def _retries() -> dict:
    """Retry settings the chain leaves unnamed: mode `standard`, 5 retries; AWS_RETRY_MODE,
    AWS_MAX_ATTEMPTS or the profile's retry_mode/max_attempts win (botocore reads them itself)."""
    retries = {}
    if not _from_chain("retry_mode", "AWS_RETRY_MODE")[0]:
        retries["mode"] = "standard"
    if not _from_chain("max_attempts", "AWS_MAX_ATTEMPTS")[0]:
        retries["max_attempts"] = 5
    return retries


@functools.cache
def _session():
    import boto3

    with aws_errors("open the AWS session"):
        return boto3.session.Session(region_name=region())


@functools.cache
def client(service: str):
    """A boto3 client; endpoint, credentials, region and retries from the standard chain."""
    from botocore.config import Config

    retry_config = Config(retries=_retries(), connect_timeout=5, read_timeout=60)
    return _session().client(service, config=retry_config)


def error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_error(error: Exception, *codes: str) -> bool:
    """True when error is a botocore ClientError with one of the codes."""
    return error_code(error) in codes


def translate(error: Exception, action: str) -> Exception:
    """A botocore/boto3 exception as the ToolError an operator should read."""
    from botocore import exceptions as bce

    if isinstance(error, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return AWSError(f"{action}: no AWS credentials found",
                        "set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and run again", "NoCredentials")
    if isinstance(error, bce.TokenRetrievalError | bce.SSOTokenLoadError | bce.UnauthorizedSSOTokenError):
        return AWSError(f"{action}: the SSO session has expired", "run aws sso login and try again", "ExpiredToken")
    if isinstance(error, bce.EndpointConnectionError | bce.ConnectTimeoutError | bce.ReadTimeoutError):
        return AWSError(f"{action}: cannot reach AWS ({error})",
                        "check the network, AWS_REGION and AWS_ENDPOINT_URL", "Unreachable")
    if isinstance(error, bce.ClientError):
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "") or code
        if code in _NOT_FOUND_CODES or error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return AWSNotFound(f"{action}: not found ({message})")
        return AWSError(f"{action}: {code}: {message}", _HINTS.get(code), code)
    if isinstance(error, bce.BotoCoreError):
        return AWSError(f"{action}: {error}")
    return error


@contextlib.contextmanager
def aws_errors(action: str):
    """Turn botocore exceptions raised inside into one clear ToolError."""
    try:
        yield
    except Exception as error:  # noqa: BLE001 - translated or re-raised as is
        translated = translate(error, action)
        if translated is error:
            raise
        raise translated from error


def paginate(service_client, operation: str, key: str, **params) -> list:
    """Every item of a paginated list call."""
    items = []
    for page in service_client.get_paginator(operation).paginate(**params):
        items.extend(page.get(key, []))
    return items


def tags_to_dict(tags) -> dict:
    """Tags as AWS lists them ([{Key, Value}] or {k: v}) as a plain dict."""
    if isinstance(tags, dict):
        return dict(tags)
    return {t.get("Key", t.get("key")): t.get("Value", t.get("value")) for t in tags or []}


# ---- S3 with SHA-256 checksums (DESIGN §8: every upload sends ChecksumAlgorithm=SHA256) ----

def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


#: A byte progress display: meter(total bytes, label) yields advance(n) (lib.cli.meter on a terminal).
Meter = Callable[[int, str], AbstractContextManager[Callable[[int], None]]]


@contextlib.contextmanager
def _no_meter(total: int, label: str):
    yield lambda count: None


class _MeteredReader:
    """A file whose reads advance a meter; bytes read again after a retry's seek count once."""

    def __init__(self, handle, advance: Callable[[int], None]):
        self._handle, self._advance, self._counted = handle, advance, 0

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        position = self._handle.tell()
        if position > self._counted:
            self._advance(position - self._counted)
            self._counted = position
        return data

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


SINGLE_PUT_LIMIT = 5 * 1024**3  # S3 takes at most 5 GiB in one PUT; larger files go in parts
PART_SIZE = 256 * 1024**2


def _put(s3, bucket: str, key: str, body, digest: str) -> None:
    """One PUT carrying the whole object's SHA-256, which S3 checks before it keeps the object."""
    checksum = base64.b64encode(bytes.fromhex(digest)).decode()
    s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
                  Metadata={"sha256": digest})


def upload_file(path: Path, bucket: str, key: str, meter: Meter | None = None) -> dict:
    """Stream a file to S3 with a SHA-256 checksum S3 verifies; returns {bucket, key, sha256}.

    Up to 5 GiB one PUT carries the whole file's checksum; above that a multipart upload
    checksums each part, and the file's own SHA-256 rides along as metadata for downloads.
    """
    digest = sha256_file(path)
    s3 = client("s3")
    size = Path(path).stat().st_size
    with aws_errors(f"upload s3://{bucket}/{key}"), (meter or _no_meter)(size, f"upload {key}") as advance:
        if size < SINGLE_PUT_LIMIT:
            with open(path, "rb") as body:
                _put(s3, bucket, key, _MeteredReader(body, advance), digest)
        else:
            from boto3.s3.transfer import TransferConfig

            s3.upload_file(str(path), bucket, key, Callback=advance,
                           ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": digest}},
                           Config=TransferConfig(multipart_threshold=SINGLE_PUT_LIMIT, multipart_chunksize=PART_SIZE))
    return {"bucket": bucket, "key": key, "sha256": digest}


def upload_bytes(data: bytes, bucket: str, key: str) -> dict:
    """A small document (an agent's input) to S3 in one checksummed PUT; returns {bucket, key, sha256}."""
    digest = hashlib.sha256(data).hexdigest()
    with aws_errors(f"upload s3://{bucket}/{key}"):
        _put(client("s3"), bucket, key, data, digest)
    return {"bucket": bucket, "key": key, "sha256": digest}


def _head(bucket: str, key: str) -> dict:
    with aws_errors(f"read s3://{bucket}/{key}"):
        return client("s3").head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")


def remote_sha256(bucket: str, key: str, head: dict | None = None) -> str | None:
    """The SHA-256 of a whole object (hex): our metadata, else S3's full-object checksum.

    The metadata is what upload_file hashed; for a single PUT S3 checked the same value,
    and a multipart object's own checksum covers its parts, not the file.
    """
    head = head or _head(bucket, key)
    if head.get("Metadata", {}).get("sha256"):
        return head["Metadata"]["sha256"]
    checksum = head.get("ChecksumSHA256")
    if checksum and "-" not in checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
        return base64.b64decode(checksum).hex()
    return None


def download_file(bucket: str, key: str, path: Path, meter: Meter | None = None) -> str:
    """Download to a temporary name, check the SHA-256 against S3's, rename; returns the digest."""
    s3 = client("s3")
    head = _head(bucket, key)
    expected = remote_sha256(bucket, key, head)
    partial = Path(f"{path}.part")
    digest = hashlib.sha256()
    try:
        with aws_errors(f"download s3://{bucket}/{key}"), \
                (meter or _no_meter)(head.get("ContentLength", 0), f"download {key}") as advance:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            with open(partial, "wb") as out:
                for block in body.iter_chunks(1 << 20):
                    digest.update(block)
                    out.write(block)
                    advance(len(block))
        if expected and digest.hexdigest() != expected:
            raise AWSError(f"s3://{bucket}/{key}: checksum mismatch (S3 says {expected[:12]}…, "
                           f"downloaded {digest.hexdigest()[:12]}…)", "the object is damaged; use another backup",
                           "ChecksumMismatch")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return digest.hexdigest()


# ---- credentials, long calls, waits and metrics (agents, costs, health) -------------------

def credentials_available() -> bool:
    """True when the standard chain finds credentials (no network call)."""
    try:
        return _session().get_credentials() is not None
    except Exception:  # noqa: BLE001 - a broken profile counts as no credentials
        return False


def require_credentials(action: str) -> None:
    """Fail early with the one no-credentials line instead of one per resource."""
    if not credentials_available():
        from botocore.exceptions import NoCredentialsError

        raise translate(NoCredentialsError(), action)


@functools.lru_cache(maxsize=32)
def call_client(service: str, read_timeout: int):
    """A client for agent calls only: one attempt, and a read timeout the caller sets from its phase timeout.

    An agent call is not idempotent (it may write, spend, open a PR), so a read that times out
    must not send it again: `total_max_attempts` counts the first send, while botocore's
    `max_attempts` counts retries (1 there meant a second invoke). The endpoint comes from the
    standard chain, so AWS_ENDPOINT_URL_BEDROCK_RUNTIME wins over AWS_ENDPOINT_URL. The cache is
    bounded because a runtime that retries asks for the time left in its phase.
    """
    from botocore.config import Config

    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5,
                    read_timeout=max(1, int(read_timeout)))
    return _session().client(service, config=config)


@functools.cache
def secret_string(name: str) -> str:
    """The current value of a Secrets Manager secret (a routing key, a webhook URL), read once per process."""
    with aws_errors(f"read secret {name}"):
        value = client("secretsmanager").get_secret_value(SecretId=name).get("SecretString")
    if not value or not value.strip():
        raise AWSError(f"read secret {name}: it holds no string value", "store the value as SecretString")
    return value.strip()


@functools.cache
def account_id() -> str:
    with aws_errors("identify the AWS account"):
        return client("sts").get_caller_identity()["Account"]


class WaitTimeout(ExternalError):
    """wait_for gave up: what it waited for did not happen in time."""


def wait_for(fetch, done, timeout: float, what: str, interval: float = 2.0):
    """Call fetch() until done(result) is true; WaitTimeout after timeout seconds."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        result = fetch()
        if done(result):
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"{what}: not done after {timeout:g}s", "check it in the AWS console and run again")
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def metric_stats(queries: dict, start, end, period: int) -> dict:
    """CloudWatch GetMetricData for {id: (namespace, metric, dimensions, stat)}: {id: value or None}.

    One request for all figures; the value is the stat over the whole window
    (the max of the per-period values for Maximum and percentiles, else the sum or mean).
    """
    cloudwatch = client("cloudwatch")
    requests_ = [
        {"Id": key, "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric,
                       "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]},
            "Period": period, "Stat": stat}}
        for key, (namespace, metric, dimensions, stat) in queries.items()
    ]
    values: dict = {key: [] for key in queries}
    with aws_errors("read CloudWatch metrics"):
        for page in cloudwatch.get_paginator("get_metric_data").paginate(
                MetricDataQueries=requests_, StartTime=start, EndTime=end):
            for result in page.get("MetricDataResults", []):
                values[result["Id"]].extend(v for v in result.get("Values", []) if v is not None)
    summary = {}
    for key, (_, _, _, stat) in queries.items():
        found = values[key]
        if not found:
            summary[key] = None
        elif stat == "Sum" or stat == "SampleCount":
            summary[key] = sum(found)
        elif stat == "Average":
            summary[key] = sum(found) / len(found)
        elif stat == "Minimum":
            summary[key] = min(found)
        else:
            summary[key] = max(found)
    return summary


def percentiles(namespace: str, metric: str, dimensions: dict, start, end, names=("p50", "p99")) -> dict:
    """Percentiles over the whole window (one period spanning it): {name: value or None}."""
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    with aws_errors(f"read CloudWatch {metric} percentiles"):
        points = client("cloudwatch").get_metric_statistics(
            Namespace=namespace, MetricName=metric, StartTime=start, EndTime=end, Period=period,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()], ExtendedStatistics=list(names),
        ).get("Datapoints", [])
    found = {name: [p["ExtendedStatistics"][name] for p in points if name in p.get("ExtendedStatistics", {})]
             for name in names}
    return {name: max(values) if values else None for name, values in found.items()}
