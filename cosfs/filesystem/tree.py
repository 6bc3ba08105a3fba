"""Moving a whole directory subtree, object by object: COS has no directory rename.

Not atomic, and said so in SEMANTICS.md; what it guarantees is that a failure half way
leaves every object present at one of the two names (never at neither):

- XML API: every object is copied to its new key (in parallel) before any source is
  deleted; the sources then go in 1,000-key multi-deletes.
- JSON API (real directories): the new directories are created first, shallowest first,
  then each file is moved with the API's own ``move`` (in parallel), then the emptied old
  directories are removed, deepest first.
"""

from __future__ import annotations

import errno
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import List

from cosfs.store.interface import ObjectInfo, Store
from cosfs.wire.errors import CosfsError

log = logging.getLogger(__name__)


def move_tree(store: Store, old_prefix: str, new_prefix: str, executor: ThreadPoolExecutor) -> int:
    """Move every object under ``old_prefix`` (a ``dir/`` key) to ``new_prefix``; returns how many."""
    objects = list(store.walk(old_prefix))
    if store.limits.native_dirs:
        _move_native(store, objects, old_prefix, new_prefix, executor)
    else:
        _copy_then_delete(store, objects, old_prefix, new_prefix, executor)
    log.info("moved %d objects from %r to %r", len(objects), old_prefix, new_prefix)
    return len(objects)


def _renamed(key: str, old_prefix: str, new_prefix: str) -> str:
    return new_prefix + key[len(old_prefix):]


def _copy_then_delete(store: Store, objects: List[ObjectInfo], old: str, new: str,
                      executor: ThreadPoolExecutor) -> None:
    if not any(o.key == old for o in objects):
        store.create_dir(new)  # the source was implicit; keep the (possibly empty) target visible
    list(executor.map(lambda o: store.copy(o.key, _renamed(o.key, old, new)), objects))
    failures = store.delete_many([o.key for o in objects])
    if failures:
        key, failure = failures[0]
        raise CosfsError(f"moved {len(objects)} objects but could not delete {len(failures)} sources "
                         f"(first: {key}: {failure}); they now exist under both names", getattr(failure, "errno", errno.EIO))


def _move_native(store: Store, objects: List[ObjectInfo], old: str, new: str,
                 executor: ThreadPoolExecutor) -> None:
    dirs = sorted({new} | {_renamed(o.key, old, new) for o in objects if o.is_dir}, key=len)
    for key in dirs:
        try:
            store.create_dir(key)
        except CosfsError as failure:
            if failure.errno != errno.EEXIST:
                raise
    files = [o for o in objects if not o.is_dir]
    list(executor.map(lambda o: store.move(o.key, _renamed(o.key, old, new), True), files))
    for key in sorted({o.key for o in objects if o.is_dir} | {old}, key=len, reverse=True):
        store.delete_dir(key)
