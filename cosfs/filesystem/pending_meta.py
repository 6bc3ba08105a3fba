"""Metadata changes held for a moment after an upload, to be folded into what follows.

``rsync -a`` writes each file under a temporary name, closes it (one PUT), sets its times
and its mode, and renames it. Applied one by one, the times and the mode would each cost a
copy of the object onto itself, and the rename a third copy. So a chmod, chown or utimens
of a file this mount stored less than ``delay`` seconds ago is *held* here instead:

- ``stat`` shows it at once (``attr_of``; the stat cache learns it too);
- a rename of the file carries it: the rename's copy writes the final metadata (XML), or
  one metadata update follows the move (JSON, whose move cannot change metadata);
- an upload of the file carries it (the upload writes the object with its attributes);
- an unlink of the file drops it;
- otherwise one copy onto itself applies it, when the delay ends (a background thread),
  at ``fsync`` of the file, or at unmount; a second change merges into a held one.

A held change is journaled (``cosfs.data.journal.MetaRecord``, in this mount's staging
directory) before the call that made it returns: after a crash, the next mount (or
``cosfs recover``) applies it if the object still has the ETag it was based on.

Locks: ``_lock`` guards the table and is never held while a request is sent. A change being
applied stays in the table marked ``applying``; whoever takes it (a rename, an upload, a
new change) waits for that request to end, so nothing races the copy onto itself.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from cosfs.data import journal
from cosfs.filesystem.lookup import Lookup
from cosfs.metadata.attrs import Attr
from cosfs.store.interface import Store
from cosfs.wire.errors import CosError

log = logging.getLogger(__name__)


@dataclass
class Held:
    """One held change: give ``key`` (the file at ``path``) the attributes ``attr``."""

    path: str
    key: str
    #: The attributes to show and to store (``attr.meta`` is the complete metadata).
    attr: Attr
    #: The ETag of the object the change was made to (what recovery checks).
    base_etag: str
    #: When the delay ends (``PendingMeta.clock``).
    due: float
    record_path: Path
    applying: bool = False


class PendingMeta:
    """The held metadata changes of one mount (``delay`` 0: none, every change is applied at once)."""

    def __init__(self, store: Store, lookup: Lookup, directory: Optional[Path], bucket: str, delay: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.lookup = lookup
        self.directory = directory
        self.bucket = bucket
        self.delay = delay if directory is not None else 0.0
        self.clock = clock
        self._cond = threading.Condition(threading.Lock())
        self._held: Dict[str, Held] = {}  # guarded by _cond
        #: path -> (ETag, when) of this mount's uploads within the last ``delay`` seconds.
        self._recent: "OrderedDict[str, Tuple[str, float]]" = OrderedDict()  # guarded by _cond
        self._stopping = False  # guarded by _cond
        #: When the timer wakes next (``None``: not until told), so a change that does not
        #: move it earlier leaves the thread asleep.
        self._timer_due: Optional[float] = None  # guarded by _cond
        self._thread: Optional[threading.Thread] = None

    # --- what the filesystem tells ------------------------------------------------------

    def stored(self, path: str, etag: Optional[str]) -> None:
        """This mount stored ``path`` just now as ``etag``: its next changes may be held."""
        if not self.delay or not etag:
            return
        now = self.clock()
        with self._cond:
            self._recent.pop(path, None)
            self._recent[path] = (etag, now)
            while self._recent and now - next(iter(self._recent.values()))[1] > self.delay:
                self._recent.popitem(last=False)

    def hold(self, path: str, key: str, attr: Attr) -> bool:
        """Hold the change that gives ``path`` the attributes ``attr`` (``attr.meta`` complete),
        journaled before this returns; ``False``: not held, the caller applies it now.

        Held when ``path`` already has a change held (merged into it), or when this mount
        stored it less than ``delay`` seconds ago as the object ``attr.etag`` names.
        """
        if not self.delay or self.directory is None:
            return False
        now = self.clock()
        with self._cond:
            held = self._settled(path)
            first = held is None
            if first:
                recent = self._recent.get(path)
                if recent is None or recent[0] != attr.etag or now - recent[1] > self.delay:
                    return False
                held = Held(path, key, attr, recent[0], now + self.delay,
                            journal.new_meta_record_path(self.directory, key))
            record = journal.MetaRecord(self.bucket, key, held.base_etag, dict(attr.meta), attr.content_type)
            try:  # a merged change is a new generation of the held one's record
                if first:
                    journal.write_record(held.record_path, record)
                else:
                    held.record_path = journal.replace_record(held.record_path, record)
            except OSError as error:  # attr is complete: applying it now applies what was held too
                log.warning("could not journal a metadata change of %s (%s): it is applied at once", path, error)
                if self._held.pop(path, None) is not None:
                    held.record_path.unlink(missing_ok=True)
                return False
            held.attr = attr
            self._held[path] = held
            if first and (self._timer_due is None or held.due < self._timer_due):
                self._cond.notify_all()  # the timer must wake earlier (a merged change keeps its due)
        log.debug("metadata change of %s held for %.1f s", path, held.due - now)
        return True

    def attr_of(self, path: str) -> Optional[Attr]:
        """The attributes of ``path`` with its held change, or ``None`` if none is held."""
        with self._cond:
            held = self._held.get(path)
            return held.attr if held is not None else None

    def take(self, path: str) -> Optional[Held]:
        """Remove and return the change held for ``path`` (after the copy applying it, if one
        is in flight, has ended): the caller stores it with what it sends (a rename, an
        upload), then calls ``finished``, or ``restore`` when that failed."""
        with self._cond:
            held = self._settled(path)
            if held is not None:
                del self._held[path]
            return held

    def finished(self, held: Held) -> None:
        """COS holds ``held``'s metadata now (carried by a rename or an upload)."""
        held.record_path.unlink(missing_ok=True)

    def restore(self, held: Held) -> None:
        """What was to carry ``held`` failed: hold it again (unless a newer change is held)."""
        with self._cond:
            if held.path in self._held:
                held.record_path.unlink(missing_ok=True)
                return
            self._held[held.path] = held
            self._cond.notify_all()

    def discard(self, path: str) -> None:
        """``path`` was deleted or replaced: the change held for it goes, without a request."""
        held = self.take(path)
        if held is not None:
            log.debug("metadata change of %s dropped: the file is gone", path)
            held.record_path.unlink(missing_ok=True)

    # --- applying -----------------------------------------------------------------------

    def apply(self, path: str) -> bool:
        """Apply the change held for ``path`` now (``fsync``), if there is one; ``False``
        when it could not be (kept in its record for the next mount)."""
        with self._cond:
            held = self._settled(path)
            if held is None:
                return True
            held.applying = True
        return self._send(held)

    def apply_under(self, dir_path: str) -> None:
        """Apply every change held below ``dir_path`` (before the directory is renamed)."""
        prefix = dir_path.rstrip("/") + "/"
        with self._cond:
            paths = [path for path in self._held if path.startswith(prefix)]
        for path in paths:
            self.apply(path)

    def apply_due(self) -> None:
        """Apply every held change whose delay has ended (the timer's work)."""
        now = self.clock()
        with self._cond:
            due = [held for held in self._held.values() if not held.applying and held.due <= now]
            for held in due:
                held.applying = True
        for held in due:
            self._send(held)

    def _send(self, held: Held) -> bool:
        """One copy onto itself with ``held``'s metadata (marked ``applying``; no lock held);
        ``False`` when it failed and the record stays for the next mount."""
        done = True
        try:
            self.store.set_meta(held.key, held.attr.meta, held.attr.content_type)
        except CosError as error:
            if error.errno == errno.ENOENT:
                log.info("metadata change of %s dropped: the object is gone from COS", held.path)
                held.record_path.unlink(missing_ok=True)
            else:
                done = False
                log.error("could not change the metadata (mode, owner, times) of %s: %s; the change is kept "
                          "in %s for the next mount (or cosfs recover)", held.path, error, held.record_path)
        except BaseException:
            with self._cond:
                held.applying = False
                self._cond.notify_all()
            raise
        else:
            held.record_path.unlink(missing_ok=True)
            self.lookup.learn(held.path, held.attr)
        with self._cond:
            if self._held.get(held.path) is held:
                del self._held[held.path]
            self._cond.notify_all()
        return done

    def _settled(self, path: str) -> Optional[Held]:
        """Under ``_cond``: the change held for ``path`` once no copy of it is in flight."""
        while True:
            held = self._held.get(path)
            if held is None or not held.applying:
                return held
            self._cond.wait()

    # --- the timer ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the thread that applies held changes when their delay ends."""
        if not self.delay or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="cosfs-pending-meta", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                wait = self._next_wait()
                while not self._stopping and wait != 0:
                    self._cond.wait(wait)
                    wait = self._next_wait()
                if self._stopping:
                    return
            try:
                self.apply_due()
            except Exception:  # noqa: BLE001 (the timer must outlive one bad change; logged)
                log.exception("applying held metadata changes failed")

    def _next_wait(self) -> Optional[float]:
        """Under ``_cond``: seconds until the next delay ends (``None``: nothing is held),
        noted as when the timer wakes."""
        waiting = [held.due for held in self._held.values() if not held.applying]
        self._timer_due = min(waiting) if waiting else None
        return max(0.0, self._timer_due - self.clock()) if waiting else None

    def close(self) -> List[str]:
        """At unmount: stop the timer and apply every held change; returns the paths whose
        change could not be applied (their records stay for the next mount)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
        with self._cond:
            paths = list(self._held)
        return [path for path in paths if not self.apply(path)]
