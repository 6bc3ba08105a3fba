"""The one module that imports a FUSE binding: mfusepy when installed, fusepy otherwise.

Why a shim: the bindings share fusepy's ``Operations`` API but differ in what they load and
accept (fusepy answers EROFS for what is not implemented, mfusepy ENOSYS; fusepy refuses
non-UTF-8 names). mfusepy loads libfuse2 first when both libraries are present, so we ask for libfuse3 (1 MiB requests, ``max_threads``) unless
``FUSE_LIBRARY_NAME`` says otherwise; fusepy only knows libfuse2. Mount options valid for
one libfuse major are rejected by the other, so they are built here per major version.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from importlib import metadata
from typing import Dict, Optional

#: ``COSFS_FUSE_BINDING=fusepy`` forces the fallback (CI runs a smoke subset that way).
_WANTED = os.environ.get("COSFS_FUSE_BINDING", "mfusepy")

if "FUSE_LIBRARY_NAME" not in os.environ and ctypes.util.find_library("fuse3"):
    os.environ["FUSE_LIBRARY_NAME"] = "fuse3"


def _load_fusepy():
    import fuse

    return fuse


try:
    if _WANTED == "fusepy":
        raise ImportError("fusepy requested")
    import mfusepy as _binding

    BINDING = "mfusepy"
    LIBFUSE_MAJOR = int(_binding.fuse_version_major)
    LIBFUSE_MINOR = int(_binding.fuse_version_minor)
except ImportError:  # the tested fallback: plain fusepy, which only knows libfuse2
    _binding = _load_fusepy()
    BINDING = "fusepy"
    LIBFUSE_MAJOR, LIBFUSE_MINOR = 2, 9

try:
    BINDING_VERSION = metadata.version(BINDING)
except metadata.PackageNotFoundError:
    BINDING_VERSION = ""



#: libfuse 3's ``readdir`` flag asking for attributes with the names, and the filler flag
#: that says an entry's attributes are complete (``fuse.h``: ``FUSE_READDIR_PLUS``,
#: ``FUSE_FILL_DIR_PLUS``).
FUSE_READDIR_PLUS = 1 << 0
FUSE_FILL_DIR_PLUS = 1 << 1


class _CosfsFUSE(_binding.FUSE):
    """mfusepy's ``FUSE`` with three callbacks completed on libfuse 3.

    - ``open`` answers with ``keep_cache`` when cosfs says the kernel's pages of the file
      are still current (the same ETag as at its previous open), so rereading an unchanged
      file costs no request; without it the kernel drops them at every open.

    - ``ftruncate`` keeps its file handle: mfusepy 3.1's ``truncate_fuse_3`` drops the file
      info, so ``ftruncate(fd)`` would arrive as a truncate by path; cosfs must know which
      handle changed a file (the close of that handle uploads it), as under libfuse 2.
    - readdir with offsets, and readdirplus: mfusepy hands libfuse the whole listing at
      offset 0, which libfuse buffers and sends with only each entry's type. Entries with
      their own offsets go to the kernel as they are read, several calls for a large
      directory; and when the kernel asks for attributes too (``FUSE_READDIR_PLUS``), the
      entries whose attributes cosfs knows go with ``FUSE_FILL_DIR_PLUS``, which libfuse
      honours only for entries with an offset. The kernel then caches those attributes for
      ``attr_timeout``, and a following ``ls -l`` sends no lookup per entry.
    """

    def open(self, path, fip):  # noqa: ANN001 (mfusepy's signature)
        """Set ``keep_cache`` in the open reply when the operations say the kernel's cached
        pages of the file are still its content (mfusepy passes only ``fh`` otherwise)."""
        open_keeping = getattr(self.operations, "open_keeping_cache", None)
        if open_keeping is None:
            return super().open(path, fip)
        fi = fip.contents
        fi.fh, keep = open_keeping(path.decode(self.encoding, self.errors), fi.flags)
        fi.keep_cache = 1 if keep else 0
        return 0

    def truncate_fuse_3(self, path, length, fip):  # noqa: ANN001 (mfusepy's signature)
        fh = fip.contents.fh if fip else None
        return self.operations.truncate(None if path is None else path.decode(self.encoding, self.errors),
                                        length, fh)

    def readdir_fuse_3(self, path, buf, filler, offset, fip, flags):  # noqa: ANN001 (mfusepy's signature)
        read_from = getattr(self.operations, "readdir_from", None)
        if read_from is None:
            return super().readdir_fuse_3(path, buf, filler, offset, fip, flags)
        entries = read_from(None if path is None else path.decode(self.encoding, self.errors),
                            fip.contents.fh, offset, bool(flags & FUSE_READDIR_PLUS))
        st = _binding.c_stat()
        for name, attrs, complete, next_offset in entries:
            ctypes.memset(ctypes.byref(st), 0, ctypes.sizeof(st))
            _binding.set_st_attrs(st, attrs, use_ns=self.use_ns)
            fill = FUSE_FILL_DIR_PLUS if complete else 0
            if filler(buf, name.encode(self.encoding, self.errors), st, next_offset, fill) != 0:
                break  # the kernel's buffer is full: it asks again from the last offset it took
        return 0


FUSE = _CosfsFUSE if BINDING == "mfusepy" else _binding.FUSE
Operations = _binding.Operations
FuseOSError = _binding.FuseOSError
fuse_get_context = _binding.fuse_get_context
fuse_exit = _binding.fuse_exit

#: ``utimensat`` special values as libfuse3 passes them (``tv_nsec`` with ``tv_sec = 0``).
UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2


def describe() -> str:
    """``mfusepy 3.1.1 on libfuse 3.14``: for ``--version`` and the mount log line."""
    version = f" {BINDING_VERSION}" if BINDING_VERSION else ""
    return f"{BINDING}{version} on libfuse {LIBFUSE_MAJOR}.{LIBFUSE_MINOR}"


def mount_options(
    fsname: str,
    *,
    allow_other: bool = False,
    read_only: bool = False,
    max_threads: int = 32,
    attr_timeout: float = 1.0,
    entry_timeout: float = 1.0,
    negative_timeout: float = 0.0,
    extra: Optional[Dict[str, object]] = None,
) -> Dict[str, object]:
    """Keyword options for ``FUSE(...)`` that the loaded libfuse accepts.

    ``default_permissions`` is always on: the kernel checks mode bits, so ``allow_other``
    does not open every file to every user.
    """
    options: Dict[str, object] = {
        "fsname": fsname,
        "subtype": "cosfs",
        "default_permissions": True,
        "attr_timeout": attr_timeout,
        "entry_timeout": entry_timeout,
        "negative_timeout": negative_timeout,
    }
    if allow_other:
        options["allow_other"] = True
    if read_only:
        options["ro"] = True
    if LIBFUSE_MAJOR >= 3:
        options["max_threads"] = max_threads
    else:
        options["big_writes"] = True
        options["max_read"] = 131072
    options.update(extra or {})
    return options
