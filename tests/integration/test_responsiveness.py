"""Operations on a file do not wait for the network while it is being stored.

SEMANTICS.md, ``stat`` of a file being uploaded: "answered from the file's state at once,
without waiting for the upload".
"""

from __future__ import annotations

import os
import threading
import time

from tests.integration.test_kernel_caches import kernel_getattrs
from tests.integration.test_write_contract import sends
from tests.support.mounted import wait_until

MiB = 1024 * 1024
SIZE = 100 * MiB
#: Per connection; the upload's parallel parts make it take several seconds in all.
BANDWIDTH_MBPS = 2


def test_a_stat_during_a_100_mib_upload_answers_within_100_ms(cos, emulator):
    """Issue 11: a ``getattr`` of a file during its 2 s PUT waited 1.8 s for the file's lock,
    which the upload held. Now it answers from the file's state without that lock."""
    path = cos.path / "big.bin"
    block = os.urandom(MiB)
    descriptor = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    for _ in range(SIZE // MiB):
        os.write(descriptor, block)
    emulator.admin("faults", {"bandwidth_mbps": BANDWIDTH_MBPS})
    closed = []
    closer = threading.Thread(target=lambda: (os.close(descriptor), closed.append(True)))
    closer.start()
    try:
        wait_until(lambda: sends(emulator) > 0 or closed, timeout=30, what="the upload to begin")
        before = kernel_getattrs(cos)
        latencies = []
        for _ in range(10):
            started = time.perf_counter()
            assert os.stat(path).st_size == SIZE
            latencies.append(time.perf_counter() - started)
        reached_cosfs = kernel_getattrs(cos) - before
        still_uploading = closer.is_alive()
    finally:
        emulator.admin("faults", {"bandwidth_mbps": 0})
        closer.join(120)

    print(f"\nstat during the upload: slowest {max(latencies) * 1000:.1f} ms, {reached_cosfs} reached cosfs")
    assert closed == [True]
    assert still_uploading, "the upload ended before the stats were measured: nothing was shown"
    assert reached_cosfs >= 1, "the kernel answered every stat from its cache: the lock was not tested"
    assert max(latencies) < 0.1, latencies
