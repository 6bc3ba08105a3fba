"""Map mount paths to COS keys and back, and validate names, for a mount of ``BUCKET[:/prefix]``.

A mount path is absolute POSIX (``/`` is the root of the mount) as FUSE passes it: no
empty, ``.`` or ``..`` components. A file ``/a/b`` is the key ``prefix + "a/b"``, the
directory ``/a/b`` is the marker key ``prefix + "a/b/"``, and the root is ``prefix`` itself
(``""`` for a whole bucket). Names a key can hold but a directory entry cannot (empty,
``.``, ``..``, or with ``/``) are hidden with ``visible_name``.

A name COS cannot hold is refused with EINVAL wherever a path is checked, before any cache
or request: one that is not UTF-8, or that has a control character (U+0000 to U+001F and
U+007F; COS refuses such keys, but only when the object is stored, which for a new file is
its ``close``). Looking such a name up is EINVAL too, not ENOENT: the answer is the same for
every operation, costs no request, and the kernel does not cache it as a missing entry.
Keys with control characters (written to another S3-compatible store) are not listed.

Pure functions only: no I/O.
"""

from __future__ import annotations

import errno
import re

from cosfs.wire import facts
from cosfs.wire.errors import ConfigError, CosfsError

#: Longest key COS accepts, in UTF-8 bytes.
MAX_KEY_BYTES = facts.MAX_KEY_BYTES
#: Longest path component a directory entry may have (NAME_MAX), in UTF-8 bytes.
MAX_NAME_BYTES = 255

ROOT = "/"

#: The characters no COS key may hold: the C0 controls (NUL included) and DEL.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class PathMapper:
    """Turns mount paths into keys under one prefix, and keys under it back into paths.

    ``prefix`` may be given as ``/sub/dir``, ``sub/dir/`` or ``""``; it is kept as
    ``""`` or ``"sub/dir/"``. Every key produced is valid UTF-8 and at most
    ``MAX_KEY_BYTES`` long, with no component over ``MAX_NAME_BYTES``; otherwise the
    methods raise ``CosfsError`` with EINVAL or ENAMETOOLONG naming the path.
    """

    def __init__(self, prefix: str = "") -> None:
        self.prefix = _normalise_prefix(prefix)

    def __repr__(self) -> str:
        return f"PathMapper(prefix={self.prefix!r})"

    def file_key(self, path: str) -> str:
        """The key of the file at ``path`` (``/a/b`` -> ``prefix + "a/b"``)."""
        relative = _relative(path)
        if not relative:
            raise ValueError("the root of the mount is a directory and has no file key")
        return self._checked(path, self.prefix + relative)

    def dir_key(self, path: str) -> str:
        """The marker key of the directory at ``path`` (``/a/b`` -> ``prefix + "a/b/"``,
        ``/`` -> ``prefix``); also the prefix to list the directory with."""
        relative = _relative(path)
        key = self.prefix + relative + "/" if relative else self.prefix
        return self._checked(path, key)

    def check(self, path: str) -> None:
        """Raise EINVAL or ENAMETOOLONG (as ``file_key`` does) when ``path`` cannot name an
        object; the root always can."""
        if path != ROOT:
            self.file_key(path)

    def path_of(self, key: str) -> str:
        """The mount path of ``key`` (file or ``dir/`` marker); the inverse of the two above.

        Raises ``ValueError`` when ``key`` is not below the prefix. The path is not
        validated: callers listing a directory filter names with ``visible_name``.
        """
        if not key.startswith(self.prefix):
            raise ValueError(f"key {key!r} is outside the mounted prefix {self.prefix!r}")
        relative = key[len(self.prefix):]
        if relative.endswith("/"):
            relative = relative[:-1]
        return ROOT + relative

    def _checked(self, path: str, key: str) -> str:
        size = len(key.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise CosfsError(
                f"path {path!r} makes a key of {size} bytes; COS keys are at most "
                f"{MAX_KEY_BYTES} bytes",
                errno.ENAMETOOLONG,
            )
        return key


def _normalise_prefix(prefix: str) -> str:
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    for part in stripped.split("/"):
        if part in ("", ".", "..") or _CONTROL.search(part):
            raise ConfigError(
                f"mount prefix {prefix!r} has an empty, '.' or '..' component or a control "
                "character; give it like /sub/dir"
            )
    try:
        stripped.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"mount prefix {prefix!r} is not valid UTF-8") from None
    return stripped + "/"


def _relative(path: str) -> str:
    """``path`` without its leading ``/`` (and a trailing one), after checking each component."""
    if not path.startswith(ROOT):
        raise ValueError(f"mount path {path!r} is not absolute")
    if path == ROOT:
        return ""
    relative = path[1:-1] if path.endswith("/") else path[1:]
    for part in relative.split("/"):
        _check_component(path, part)
    return relative


def _check_component(path: str, part: str) -> None:
    if part in ("", ".", ".."):
        raise CosfsError(f"path {path!r} has an empty, '.' or '..' component", errno.EINVAL)
    control = _CONTROL.search(part)
    if control:
        raise CosfsError(
            f"path {path!r} has the control character U+{ord(control.group()):04X}; COS keys cannot hold "
            "control characters (U+0000 to U+001F, U+007F)",
            errno.EINVAL,
        )
    try:
        size = len(part.encode("utf-8"))
    except UnicodeEncodeError:
        raise CosfsError(
            f"path {path!r} is not valid UTF-8; COS keys must be UTF-8", errno.EINVAL
        ) from None
    if size > MAX_NAME_BYTES:
        raise CosfsError(
            f"name {part[:40]!r}... in path {path!r} is {size} bytes; names are at most "
            f"{MAX_NAME_BYTES} bytes",
            errno.ENAMETOOLONG,
        )


def parent(path: str) -> str:
    """The directory holding ``path``: ``/a/b`` -> ``/a``, ``/a`` -> ``/``, ``/`` -> ``/``."""
    trimmed = path.rstrip("/")
    head = trimmed.rpartition("/")[0]
    return head or ROOT


def basename(path: str) -> str:
    """The last component of ``path``: ``/a/b`` -> ``b``; ``""`` for the root."""
    return path.rstrip("/").rpartition("/")[2]


def join(dir_path: str, name: str) -> str:
    """The path of ``name`` inside ``dir_path``; ``ValueError`` if ``name`` is not a
    ``visible_name``."""
    if not visible_name(name):
        raise ValueError(f"{name!r} cannot be a directory entry")
    return dir_path.rstrip("/") + "/" + name


def visible_name(name: str) -> bool:
    """Whether ``name`` (one component from a listing) can appear as a directory entry.

    False for ``""`` (from keys like ``a//b``), ``.``, ``..``, names with ``/`` or a control
    character (NUL included), and names over ``MAX_NAME_BYTES``: they could be listed but
    never looked up.
    """
    if name in ("", ".", "..") or "/" in name or _CONTROL.search(name):
        return False
    try:
        return len(name.encode("utf-8")) <= MAX_NAME_BYTES
    except UnicodeEncodeError:
        return False
