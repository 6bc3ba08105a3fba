"""Attributes and listings of paths, from the caches when they can answer, else from COS.

Cost model (what a request costs is what this module is for):

- ``getattr`` of a path whose parent listing is cached and does not contain it: no request
  (it cannot exist; a negative entry is recorded).
- the first ``getattr`` of a child of a freshly listed directory costs one HEAD (``ls`` then
  ``cat one-file``: one request, not one per entry); a later miss is a tool walking the
  directory (``ls -l``, ``find``, ``rsync``): ``cosfs.filesystem.prefetch`` fetches that
  entry and a window of the unknown siblings after it in listing order, in parallel, the
  window growing while the walker keeps up and stopping when it stops. A walk then costs one
  LIST page per 1,000 entries plus at most one HEAD per entry, issued in parallel; ``stat a
  b`` in a directory of any size costs a handful; a plain ``ls`` (names only) costs the LIST
  alone.
- a path whose HEAD is in flight (prefetched, or asked by another thread) waits for that
  answer: no second request.
- otherwise: HEAD of the file key; if missing, HEAD of the ``dir/`` marker; if missing, a
  one-key LIST of the prefix (a directory written by another tool has no marker).

- a tool looking names up one by one in a directory it never listed (rsync's receiver):
  when the attribute cache holds up to ``LIST_ON_WALK_MAX`` entries there, the second miss
  lists the directory, which proves them unchanged and answers new names without a HEAD.
- with ``trust_list``, a listed file's attributes are those of its list entry (size,
  Last-Modified as mtime, mode and owner from the defaults): ``ls -l`` costs the list pages
  alone. A path not in a cached listing (a lookup before any listing, or after its TTL)
  still costs the HEADs above, and then shows its metadata as usual.

- after a remount, a file the persistent attribute cache (``cosfs.metadata.attr_store``)
  holds with the validators its list page shows (ETag, size, Last-Modified to the second)
  costs no HEAD: ``listdir`` puts those attributes in the stat cache. Every HEAD of a file
  is recorded there with its validators, and so is every file this mount stores, changes
  or renames, with the ETag and size COS answered (its Last-Modified is taken from the
  first list page that shows that ETag and size).

A name that is both a file (``a``) and a directory prefix (``a/``) shows as the file, the
same answer the HEAD order gives; the directory's content is then not reachable through
the mount (documented in SEMANTICS.md).

A directory with no marker object (written by another tool, or the mount's root) has no
time of its own (the JSON API answers 0): it shows the mount's start time, which stays the
same however and whenever it is looked up and costs no request.

What is shown of a directory adds what this mount knows and COS does not hold: the time of
the last entry it added, removed or renamed there (``cosfs.metadata.dir_times``, as its
mtime and ctime), and its link count, 2 plus its subdirectories, while its listing is
cached. The mount root's attributes (chmod, chown, utimens) are held here for the mount's
lifetime: the root has no object of its own to store them on.
"""

from __future__ import annotations

import dataclasses
import errno
import threading
from collections import OrderedDict
from concurrent.futures import Executor
from typing import Callable, List, Optional, Tuple

from cosfs.filesystem.prefetch import AttributeFetches
from cosfs.metadata import paths
from cosfs.metadata.attr_store import AttrStore, Validators
from cosfs.metadata.attrs import Attr, AttrDefaults, attr_from_info, implicit_dir_attr, root_attr
from cosfs.metadata.cache import MISSING, ListCache, Listing, StatCache
from cosfs.metadata.dir_times import DirTimes
from cosfs.store.interface import ObjectInfo, Store
from cosfs.wire.errors import CosfsError


#: The most entries the attribute cache may hold below an unlisted directory for a walk of
#: it to list it (10 XML pages): a larger one is looked up name by name, as without the cache.
LIST_ON_WALK_MAX = 10_000
#: Unlisted directories whose misses are counted (least recently missed forgotten first).
MAX_UNLISTED_TRACKED = 256


def no_entry(path: str) -> CosfsError:
    return CosfsError(f"{path}: no such file or directory", errno.ENOENT)


class Lookup:
    """Answers "what is at this path" and "what is in this directory" for the filesystem."""

    def __init__(
        self,
        store: Store,
        mapper: paths.PathMapper,
        stats: StatCache,
        listings: ListCache,
        defaults: AttrDefaults,
        heads: Executor,
        clock: Callable[[], float],
        mount_time_ns: int,
        persistent: Optional[AttrStore] = None,
        trust_list: bool = False,
    ) -> None:
        self.store = store
        self.mapper = mapper
        self.stats = stats
        self.listings = listings
        self.defaults = defaults
        self.clock = clock
        self.mount_time_ns = mount_time_ns
        #: Attributes kept across mounts, trusted only when a list page shows the same validators.
        self.persistent = persistent
        self._misses_lock = threading.Lock()
        self._unlisted_misses: "OrderedDict[str, int]" = OrderedDict()  # guarded by _misses_lock
        #: ``-o trust_list``: file attributes come from the list pages alone, never from a HEAD.
        self.trust_list = trust_list
        #: ``heads`` is the metadata request pool (``parallel_heads``), apart from the uploads'.
        self.fetches = AttributeFetches(self.fetch, stats, heads)
        #: When this mount last changed each directory's entries (shown as its mtime and ctime).
        self.dir_times = DirTimes()
        #: The mount root's attributes: the mount's start time until a chmod, chown or utimens.
        self.root = root_attr(defaults, mount_time_ns)

    # --- single paths -------------------------------------------------------------------

    def getattr(self, path: str) -> Attr:
        """The attributes of ``path``; ENOENT if nothing is there."""
        if path == "/":
            return self.shown("/", self.root)
        self.mapper.check(path)  # a name too long is ENAMETOOLONG, whatever the caches hold
        cached = self.stats.get(path)
        if cached is MISSING:
            raise no_entry(path)
        if cached is not None:
            self.fetches.touched(path)
            return self.shown(path, cached)
        parent = paths.parent(path)
        listing = self.listings.get(parent)
        if listing is None and self._walked_unlisted(parent):
            listing = self.listdir(parent)
        if listing is None:
            attr = self.fetches.one(path, None)
        elif listing.kind(paths.basename(path)) is None:
            self.stats.put_missing(path)
            raise no_entry(path)
        else:
            attr = self.fetches.in_listed(parent, listing, path)
        if attr is None:
            raise no_entry(path)  # recorded as missing by the fetch
        return self.shown(path, attr)

    def shown(self, path: str, attr: Attr) -> Attr:
        """``attr`` as ``stat`` shows it: a directory gets the time of the last entry change
        made here when that is later than its own, and its link count when its listing is
        cached. Other kinds are shown as they are."""
        if attr.kind != "dir":
            return attr
        changes = {}
        changed_ns = self.dir_times.get(path)
        if changed_ns is not None and changed_ns > attr.mtime_ns:
            changes["mtime_ns"] = changed_ns
        if changed_ns is not None and changed_ns > attr.change_ns:
            changes["ctime_ns"] = changed_ns
        listing = self.listings.get(path)
        if listing is not None:
            changes["nlink"] = 2 + listing.count("dir")
        return dataclasses.replace(attr, **changes) if changes else attr

    def _walked_unlisted(self, dir_path: str) -> bool:
        """Whether to list ``dir_path`` now: the second miss in a directory not listed (a
        tool looking names up one by one, as rsync's receiver does), when the attribute
        cache holds entries there, at most ``LIST_ON_WALK_MAX``. The list pages then prove
        those entries unchanged, and answer "no such file" for new names, instead of a HEAD
        per name."""
        if self.persistent is None:
            return False
        with self._misses_lock:
            misses = self._unlisted_misses.pop(dir_path, 0) + 1
            self._unlisted_misses[dir_path] = misses
            while len(self._unlisted_misses) > MAX_UNLISTED_TRACKED:
                self._unlisted_misses.popitem(last=False)
        return misses == 2 and 0 < self.persistent.count_below(dir_path, LIST_ON_WALK_MAX + 1) <= LIST_ON_WALK_MAX

    def fetch(self, path: str, kind: Optional[str]) -> Optional[Attr]:
        """Ask COS what ``path`` is; ``kind`` from a listing saves the requests that cannot match."""
        if kind != "dir":
            info = self.store.stat(self.mapper.file_key(path))
            if info is not None and not info.is_dir:
                attr = attr_from_info(info, self.defaults)
                if self.persistent is not None:
                    self.persistent.record(path, attr, Validators.of(info))
                return attr
        dir_key = self.mapper.dir_key(path)
        info = self.store.stat(dir_key)
        if info is not None:
            return self._dir_attr(info)
        if kind == "dir" or self._has_children(dir_key):
            return implicit_dir_attr(self.defaults, self.mount_time_ns)
        return None

    def _dir_attr(self, info: ObjectInfo) -> Attr:
        """A directory COS answered for. The JSON API also answers for one without a marker,
        with a time of 0: that directory has no time either, and gets the mount's."""
        attr = attr_from_info(info, self.defaults, is_dir=True)
        if info.mtime_ns == 0 and attr.mtime_ns == 0:
            return dataclasses.replace(attr, mtime_ns=self.mount_time_ns)
        return attr

    def _has_children(self, dir_key: str) -> bool:
        page = self.store.list_page(dir_key, max_keys=1)
        return bool(page.files or page.dirs)

    def known(self, path: str) -> Optional[Attr]:
        """The cached attributes of ``path``, without asking COS (``None`` when not cached)."""
        if path == "/":
            return self.shown(path, self.root)
        cached = self.stats.get(path)
        return self.shown(path, cached) if isinstance(cached, Attr) else None

    def known_listing(self, path: str) -> Optional[Listing]:
        """The cached listing of directory ``path``, without asking COS."""
        return self.listings.get(path)

    def find(self, path: str) -> Optional[Attr]:
        """The attributes of ``path``, or ``None`` if nothing is there."""
        try:
            return self.getattr(path)
        except CosfsError as error:
            if error.errno == errno.ENOENT:
                return None
            raise

    # --- directories --------------------------------------------------------------------

    def listdir(self, path: str) -> Listing:
        """The complete listing of directory ``path`` (all pages), cached for the list TTL.

        Streamed page by page: what a page carries (its ``ObjectInfo``s, the attributes
        taken from them) is used and dropped before the next page is asked for; only the
        names and kinds are kept, in a compact ``Listing``."""
        listing = self.listings.get(path)
        if listing is not None:
            return listing
        dir_key = self.mapper.dir_key(path)
        files: List[str] = []
        dirs: List[str] = []
        marker = ""
        while True:
            page = self.store.list_page(dir_key, marker, self.store.limits.max_list_keys)
            for prefix in page.dirs:
                name = prefix[len(dir_key):-1]
                if paths.visible_name(name):
                    dirs.append(name)
            listed: List[Tuple[str, ObjectInfo]] = []
            for info in page.files:
                name = info.key[len(dir_key):]
                if paths.visible_name(name):
                    files.append(name)
                    listed.append((paths.join(path, name), info))
            self._attributes_from_page(listed)
            if page.next_marker is None:
                break
            marker = page.next_marker
        del page, listed  # the last page goes before the listing is built: one page at a time
        listing = Listing.of_files_and_dirs(files, dirs)
        del files, dirs  # the listing holds the names now; the lists would double them until return
        self.listings.put(path, listing)
        self.fetches.listed(path)
        if self.persistent is not None:
            self.persistent.flush()
        return listing

    def _attributes_from_page(self, listed: List[Tuple[str, ObjectInfo]]) -> None:
        """Put in the stat cache what one list page tells of its files' attributes, so the walk
        after it sends no HEAD for them: with ``trust_list``, the attributes the page gives
        (size, Last-Modified, defaults for the rest); else those the persistent attribute
        cache holds for the files unchanged since their HEAD (same validators). A path the
        stat cache already knows keeps what this mount knows."""
        if not listed or not self.stats.holds_attributes:
            return
        if self.trust_list:
            for child, info in listed:
                if self.stats.get(child) is None:
                    self.stats.put(child, attr_from_info(info, self.defaults, is_dir=False))
            return
        if self.persistent is None:
            return
        matching = self.persistent.matching([(child, Validators.of(info)) for child, info in listed])
        for child, attr in matching.items():
            if self.stats.get(child) is None:
                self.stats.put(child, attr)

    # --- invalidation -------------------------------------------------------------------

    def learn(self, path: str, attr: Attr, stored: bool = True) -> None:
        """``path`` now has ``attr`` (after an upload or setattr through this mount);
        ``stored=False``: a change COS does not hold yet (held, ``cosfs.filesystem.pending_meta``),
        shown now but not kept across mounts until it is applied.

        A directory's ``attr`` carries its times as they were shown (``shown``): they are
        its own now, and the entry-change override ends. The root's are held here."""
        if attr.nlink:
            attr = dataclasses.replace(attr, nlink=0)  # a count is computed when shown, never kept
        if attr.kind == "dir":
            self.dir_times.forget(path)
        if path == "/":
            self.root = attr
            return
        if stored:
            self._remember(path, attr)
        else:
            self._forget_persistent(path)
        self.fetches.forget(path)
        self.stats.put(path, attr)

    def added(self, path: str, attr: Attr) -> None:
        """``path`` was created through this mount: record it, and in its parent's cached
        listing, so looking up its siblings still costs no request. The parent's times change."""
        self.learn(path, attr)
        self._edit_listing(path, attr.kind)
        self._entries_changed(path)
        if attr.kind == "dir":
            self.listings.put(path, Listing({}))

    def removed(self, path: str, tree: bool = True) -> None:
        """``path`` was deleted through this mount; its parent's times change. ``tree=False``:
        it was a file, so nothing cached below it needs a search of every cached path (a
        rename or unlink per file in a mount holding 100,000 entries would scan them all)."""
        self._entries_changed(path)
        self._drop_cached(path, tree)
        self.stats.put_missing(path)
        self._edit_listing(path, None)

    def moved(self, old: str, new: str, kind: str, attr: Optional[Attr] = None) -> None:
        """``old`` (a file or a whole tree) now lives at ``new``; ``attr``: the file's attributes."""
        tree = kind == "dir"
        self.removed(old, tree=tree)
        self._drop_cached(new, tree)
        if attr is not None:
            self._remember(new, attr)  # a copy keeps the metadata; a new ETag just costs one HEAD
        self._edit_listing(new, kind)
        self._entries_changed(new)

    def _drop_cached(self, path: str, tree: bool) -> None:
        """Forget what every cache holds of ``path``; with ``tree`` (a directory), of every
        path below it too, which searches all cached paths, so a file is forgotten alone."""
        self._forget_persistent(path, tree=tree)
        self.fetches.forget(path)
        if tree:
            self.dir_times.forget_tree(path)
            self.stats.invalidate_tree(path)
            self.listings.invalidate_tree(path)
        else:
            self.stats.invalidate(path)
            self.listings.invalidate(path)

    def _entries_changed(self, path: str) -> None:
        """An entry appeared at ``path`` or left it: its directory's mtime and ctime are now."""
        self.dir_times.touch(paths.parent(path), int(self.clock() * 1e9))

    def _remember(self, path: str, attr: Attr) -> None:
        """This mount stored ``attr`` at ``path``: a file's attributes are kept across mounts,
        trusted once a list page shows the ETag and size COS answered for it (so a tree
        written through the mount costs no HEAD per file after a remount). A directory has no
        list validators and is forgotten."""
        if self.persistent is None:
            return
        if attr.kind != "dir" and attr.etag:
            self.persistent.record_own(path, attr)
        else:
            self.persistent.forget(path)

    def _forget_persistent(self, path: str, tree: bool = False) -> None:
        """This mount changed ``path``: its stored attributes go. The validators of the next
        list page would tell a changed object in almost every case; not for a metadata change
        within the second of the HEAD that kept the old ones (same ETag, size and second)."""
        if self.persistent is not None:
            self.persistent.forget(path, tree)

    def _edit_listing(self, path: str, kind: Optional[str]) -> None:
        self.listings.edit(paths.parent(path), paths.basename(path), kind)

