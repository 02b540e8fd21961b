"""An S3 endpoint for tests and benchmarks: moto's server on a free loopback port, in-process."""

from __future__ import annotations

import dataclasses
import functools
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer


@dataclasses.dataclass(frozen=True)
class S3Endpoint:
    url: str
    bucket: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"

    def settings_env(self) -> dict[str, str]:
        """The FIELDSYNC_* variables that point the app's photo store at this bucket."""
        return {
            "FIELDSYNC_STORAGE_BACKEND": "s3",
            "FIELDSYNC_S3_ENDPOINT_URL": self.url,
            "FIELDSYNC_S3_BUCKET": self.bucket,
            "FIELDSYNC_S3_ACCESS_KEY_ID": self.access_key,
            "FIELDSYNC_S3_SECRET_ACCESS_KEY": self.secret_key,
            "FIELDSYNC_S3_REGION": self.region,
        }


def sync_client(endpoint: S3Endpoint) -> Any:
    """A plain (blocking) boto3 client of the endpoint, for setting up and inspecting buckets."""
    return _client(endpoint.url, endpoint.region, endpoint.access_key, endpoint.secret_key)


@functools.lru_cache(maxsize=8)
def _client(url: str, region: str, access_key: str, secret_key: str) -> Any:
    # Kept: loading the S3 service model takes a tenth of a second. Credentials are passed
    # explicitly, so nothing is read from or written to os.environ.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )


def new_bucket(endpoint: S3Endpoint) -> S3Endpoint:
    """The same endpoint with a new, empty bucket of its own."""
    bucket = f"fieldsync-test-{uuid.uuid4().hex[:12]}"
    sync_client(endpoint).create_bucket(Bucket=bucket)
    return dataclasses.replace(endpoint, bucket=bucket)


@contextmanager
def running_s3() -> Iterator[S3Endpoint]:
    """Start moto's S3 server on 127.0.0.1 (a free port) with one new bucket; stop it afterwards."""
    # Werkzeug logs every request at INFO to a stderr handler of its own unless the level is
    # set: that would flood test failure reports and benchmark output.
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield new_bucket(S3Endpoint(url=f"http://{host}:{port}", bucket=""))
    finally:
        server.stop()
        werkzeug_log.setLevel(level)
