"""A real S3 protocol server on loopback for MEDIA_BACKEND=s3: moto's standalone server.

`s3_server` (session) starts moto's server on a free port of 127.0.0.1 and stops it at
the end; the app reaches it through the same django-storages and boto3 code that talks
to AWS, MinIO or Ceph in production. `s3_media` gives one test a fresh bucket with the
documented bucket policy and points the site's two stores at it.

For tests that start their own processes (the stack test), `S3Server.environment(bucket)`
is the environment that sends an app host to the same bucket.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import pytest

from donations.storage import public_read_policy

REGION = "us-east-1"
KEY_ID = "imagemonkey-test"
SECRET = "imagemonkey-test-secret"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class S3Server:
    endpoint: str

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY_ID,
            aws_secret_access_key=SECRET,
        )

    def new_bucket(self) -> str:
        """A new, empty bucket whose public/ anyone may read (the README's policy)."""
        bucket = f"imagemonkey-test-{uuid.uuid4().hex[:12]}"
        client = self.client()
        client.create_bucket(Bucket=bucket)
        client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public_read_policy(bucket)))
        return bucket

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", ()))

    def empty(self, bucket: str) -> None:
        client = self.client()
        for key in self.keys(bucket):
            client.delete_object(Bucket=bucket, Key=key)

    def remove_bucket(self, bucket: str) -> None:
        self.empty(bucket)
        self.client().delete_bucket(Bucket=bucket)

    def settings(self, bucket: str) -> dict:
        """Django settings that put both image stores in `bucket`."""
        return {
            "MEDIA_BACKEND": "s3",
            "AWS_STORAGE_BUCKET_NAME": bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_S3_REGION_NAME": REGION,
            "AWS_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": KEY_ID,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "MEDIA_PUBLIC_URL": "",
        }

    def environment(self, bucket: str) -> dict[str, str]:
        """The same, as the environment of an app host started as its own process."""
        return {name: value for name, value in self.settings(bucket).items() if value}


def s3_storages(base: dict) -> dict:
    return {
        **base,
        "private_media": {"BACKEND": "donations.storage.PrivateS3Storage"},
        "public_media": {"BACKEND": "donations.storage.PublicS3Storage"},
    }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(endpoint=f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@dataclass
class S3Media:
    server: S3Server
    bucket: str

    def stored(self) -> list[str]:
        """Every key in the bucket, sorted."""
        return self.server.keys(self.bucket)

    def public_base(self) -> str:
        return f"{self.server.endpoint}/{self.bucket}/public/"

    def object(self, key: str) -> dict:
        return self.server.client().head_object(Bucket=self.bucket, Key=key)


@pytest.fixture
def s3_media(s3_server, settings) -> Iterator[S3Media]:
    """This test's image stores are private/ and public/ of a fresh bucket."""
    bucket = s3_server.new_bucket()
    # Through pytest-django's `settings`, so that what the test itself changes there is
    # undone first, whatever order the fixtures were asked for in.
    for name, value in s3_server.settings(bucket).items():
        setattr(settings, name, value)
    settings.STORAGES = s3_storages(settings.STORAGES)
    yield S3Media(s3_server, bucket)
    s3_server.remove_bucket(bucket)
