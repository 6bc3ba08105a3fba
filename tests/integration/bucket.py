"""Reach the emulator's bucket directly (boto3, path-style SigV4), behind the mount's back."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterable, Optional

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


class Bucket:
    """The emulator's one bucket as seen by another COS client."""

    def __init__(self, emulator) -> None:
        self.name = emulator.bucket
        self.client = boto3.client(
            "s3", endpoint_url=emulator.url, region_name=emulator.region,
            aws_access_key_id=emulator.secret_id, aws_secret_access_key=emulator.secret_key,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                          retries={"max_attempts": 1}, max_pool_connections=32),
        )

    def put(self, key: str, body: bytes = b"", meta: Optional[Dict[str, str]] = None) -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body, Metadata=meta or {})

    def put_many(self, keys: Iterable[str], body: bytes = b"x", meta: Optional[Dict[str, str]] = None,
                 workers: int = 16) -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda key: self.put(key, body, meta), keys))

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def head(self, key: str) -> Optional[dict]:
        """The HEAD answer for ``key``, or None when there is no such object."""
        try:
            return self.client.head_object(Bucket=self.name, Key=key)
        except ClientError as error:
            if error.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return None
            raise

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def keys(self, prefix: str = "") -> list:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


def file_meta(mode: int = 0o100644, uid: int = 0, gid: int = 0, mtime: int = 1_600_000_000) -> Dict[str, str]:
    """COSFS-style attribute metadata (``x-cos-meta-*`` without the prefix)."""
    return {"mode": str(mode), "uid": str(uid), "gid": str(gid), "mtime": str(mtime)}
