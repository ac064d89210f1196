"""A real S3-compatible server (moto) on loopback, for the DVC remote and capture tests."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gitops_ml.release.deploy import free_port

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
REGION = "us-east-1"


@dataclass(frozen=True)
class ObjectStore:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, **CREDENTIALS)

    def env(self) -> dict[str, str]:
        """What a process (the server, s3fs) needs to reach this store: the standard AWS
        variables, as a pod gets them from its service account."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": REGION,
        }

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


@contextmanager
def object_store(*buckets: str) -> Iterator[ObjectStore]:
    """Start moto on a free loopback port with these (empty) buckets; stop it after."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    store = ObjectStore(f"http://{host}:{port}")
    # moto keeps its state per process, not per server: start each store empty.
    urllib.request.urlopen(urllib.request.Request(f"{store.endpoint}/moto-api/reset", b""))
    for bucket in buckets:
        store.client().create_bucket(Bucket=bucket)
    try:
        yield store
    finally:
        server.stop()
