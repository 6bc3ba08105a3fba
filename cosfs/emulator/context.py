"""What every API handler may use: the store, the authenticator and the server's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List

from cosfs.emulator.auth import Authenticator
from cosfs.emulator.protocol import EmulatorError
from cosfs.emulator.storage import Storage


@dataclass
class Context:
    storage: Storage
    auth: Authenticator
    #: The XML API region the server pretends to be (``ap-guangzhou``).
    region: str
    #: Full bucket names (``name-appid``) the server serves.
    buckets: List[str]
    #: The server's clock (seconds); may be fixed or skewed for tests.
    clock: Callable[[], float]

    def check_bucket(self, bucket: str) -> None:
        if bucket not in self.buckets:
            raise EmulatorError(404, "NoSuchBucket", "The specified bucket does not exist.")
