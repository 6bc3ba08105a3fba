"""The ``-o name=value`` options: one declaration each, giving parser, default and help text.

Every option is a field of ``Options``; its metadata holds the help line and the parser, so
``--help``, validation and defaults come from one place. Unknown options are an error,
never silently ignored: a misspelt ``stat_cache_ttl`` would otherwise leave a user
wondering why nothing changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from cosfs.wire import retry
from cosfs.wire.errors import ConfigError


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("", "1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no")


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return text

    return parse


def _number(kind: Callable[[str], Any], low: float, high: float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise ValueError(f"expected a number from {low:g} to {high:g}")
        return value

    return parse


def _octal(text: str) -> int:
    value = int(text, 8)
    if not 0 <= value <= 0o777:
        raise ValueError("expected an octal mode such as 022")
    return value


def _text(text: str) -> str:
    if not text:
        raise ValueError("expected a value")
    return text


def _listen_address(text: str) -> Tuple[str, int]:
    """``9100`` (loopback) or ``HOST:PORT`` (``[::1]:9100`` for IPv6) to ``(host, port)``."""
    host, colon, port = text.rpartition(":")
    if not colon:
        host = "127.0.0.1"
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("expected PORT or HOST:PORT, e.g. 127.0.0.1:9100")
    return host, int(port)


def _option(default: Any, parse: Callable[[str], Any], help_text: str, *aliases: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help_text, "aliases": aliases})


@dataclass(frozen=True)
class Options:
    """Everything a mount can be told with ``-o``."""

    api: str = _option("xml", _choice("xml", "json"), "COS API to use: xml (current) or json (legacy /files/v2)")
    region: Optional[str] = _option(None, _text, "bucket region, e.g. ap-guangzhou (needed unless endpoint= is given)")
    endpoint: Optional[str] = _option(
        None, _text, "API endpoint URL instead of the region's (private network, accelerate domain, emulator)", "url")
    path_style: Optional[bool] = _option(
        None, _bool, "address the bucket as endpoint/BUCKET/key (default: only for IP endpoints)",
        "use_path_request_style")
    download_endpoint: Optional[str] = _option(None, _text, "JSON API: URL objects are downloaded from")
    signature: str = _option("cos", _choice("cos", "v4"), "XML API request signature: cos (q-sign) or v4 (AWS SigV4)")
    passwd_file: Optional[str] = _option(None, _text, "credentials file (SecretId:SecretKey lines, or key=value lines)")
    public_bucket: bool = _option(False, _bool, "send anonymous requests (public-read bucket, no credentials)")
    connect_timeout: float = _option(
        5.0, _number(float, 0.1, 600),
        "seconds to wait for a TCP/TLS connection, and all a request gets while COS is silent")
    read_timeout: float = _option(15.0, _number(float, 1, 3600), "seconds to wait for data on an open connection")
    retries: int = _option(
        retry.DEFAULT_RETRIES, _number(int, 0, 100),
        "repeats of a request after a transient failure (backoff 0.1 s doubling up to 2 s, with jitter)")
    max_retry_time: float = _option(
        retry.DEFAULT_MAX_RETRY_TIME, _number(float, 1, 300),
        "seconds a request may take with all its repeats (attempt timeouts are cut to fit)")
    parallel_count: int = _option(
        8, _number(int, 1, 256), "concurrent upload parts and directory-rename copies (2 x this many threads)")
    parallel_heads: int = _option(
        32, _number(int, 1, 1024), "concurrent attribute requests (HEADs) of a directory walk, in their own pool")
    parallel_reads: int = _option(
        8, _number(int, 1, 256), "concurrent ranged GETs fetching ahead for sequential readers, in their own pool")
    max_readahead_mb: int = _option(
        64, _number(int, 0, 4096), "MB a sequential reader fetches ahead at most (starts at 2 MB, doubles; 0: off)")
    read_ahead_kb: int = _option(
        1024, _number(int, 0, 65536),
        "KiB the kernel reads ahead on this mount (root only; 0: the kernel's default, 128)")
    max_read_buffers_mb: int = _option(
        256, _number(int, 0, 65536), "MB of read buffers all open files share; beyond it readahead shrinks")
    noxattr: bool = _option(
        False, _bool, "refuse extended attributes (EOPNOTSUPP), as s3fs's noxattr: a warm ls -l makes no xattr calls")
    no_check_certificate: bool = _option(False, _bool, "do not verify the server's TLS certificate (unsafe)")
    uid: Optional[int] = _option(None, _number(int, 0, 2**32 - 2), "owner of objects without metadata (default: the mounting user)")
    gid: Optional[int] = _option(None, _number(int, 0, 2**32 - 2), "group of objects without metadata (default: the mounting group)")
    umask: int = _option(0o022, _octal, "permissions of objects without metadata: 0666/0777 minus this (octal)")
    allow_other: bool = _option(False, _bool, "let users other than the mounting one use the mount")
    ro: bool = _option(False, _bool, "mount read-only")
    stat_cache_ttl: float = _option(30.0, _number(float, 0, 86400), "seconds attributes are cached (0: off)")
    list_cache_ttl: float = _option(30.0, _number(float, 0, 86400), "seconds directory listings are cached (0: off)")
    negative_cache_ttl: float = _option(5.0, _number(float, 0, 86400), "seconds a missing path is remembered (0: off)")
    max_stat_cache_size: int = _option(100_000, _number(int, 0, 10**8), "attribute cache entries (0: off)")
    max_list_cache_entries: int = _option(
        200_000, _number(int, 0, 10**9),
        "directory entries the listing cache holds in all (a larger directory is listed each time; 0: off)")
    trust_list: bool = _option(
        False, _bool, "file attributes from list pages only, no HEAD (metadata of cosfs/s3fs not seen)")
    attr_cache: bool = _option(
        True, _bool, "keep file attributes across mounts (in cache_dir), reused while a listing shows them current")
    max_attr_cache_entries: int = _option(
        1_000_000, _number(int, 1, 10**9), "files the persistent attribute cache holds (least recently used dropped)")
    metadata_delay: float = _option(
        1.0, _number(float, 0, 60),
        "seconds a chmod/chown/utimens of a file just stored waits for a rename to carry it (0: applied at once)")
    cache_dir: Optional[str] = _option(
        None, _text, "where writes are staged and attributes kept (default ~/.cache/cosfs or /var/cache/cosfs)")
    ensure_diskfree: int = _option(1024, _number(int, 0, 10**7), "MB to keep free in cache_dir; writes fail with ENOSPC beyond")
    max_dirty_mb: int = _option(
        256, _number(int, 1, 10**7),
        "MB written to streamed files and not yet in COS, all files together; beyond it writes wait")
    max_cache_mb: int = _option(
        0, _number(int, 0, 10**9),
        "MB staged files may take in cache_dir; writes fail with ENOSPC beyond (0: half the free space at mount)")
    multipart_size: int = _option(8, _number(int, 1, 5120), "part size in MB for multipart uploads")
    multipart_threshold: int = _option(16, _number(int, 1, 5120), "files larger than this many MB are uploaded in parts")
    log_level: str = _option("warning", _choice("debug", "info", "warning", "error"), "what is logged")
    logfile: Optional[str] = _option(None, _text, "log to this file instead of syslog when running in the background")
    metrics: Optional[Tuple[str, int]] = _option(
        None, _listen_address, "serve Prometheus metrics on [HOST:]PORT (PORT alone: 127.0.0.1; off by default)")
    #: Generic FUSE options handed to libfuse as they are (validated by ``fuse_option``).
    fuse: Tuple[Tuple[str, str], ...] = field(default=(), metadata={"parse": None, "help": "", "aliases": ()})


#: Generic FUSE/mount options cosfs passes to libfuse unchanged.
FUSE_PASSTHROUGH = frozenset({
    "allow_root", "auto_unmount", "kernel_cache", "auto_cache", "attr_timeout", "entry_timeout",
    "negative_timeout", "max_read", "nonempty", "fsname", "subtype", "noatime", "atime", "relatime",
    "dev", "nodev", "suid", "nosuid", "exec", "noexec", "sync", "async", "dirsync", "rw",
})

#: mount(8)/fstab/systemd options that mean nothing to cosfs and are accepted silently.
MOUNT_ONLY = frozenset({"_netdev", "noauto", "auto", "user", "nouser", "users", "defaults", "nofail", "owner", "group"})
MOUNT_ONLY_PREFIXES = ("x-", "comment=")


def fuse_threads(options: Options) -> int:
    """libfuse's worker threads (``max_threads``): each runs one callback and may send a request."""
    return max(16, options.parallel_count * 4)


def io_threads(options: Options) -> int:
    """The I/O pool: upload parts and the copies of a directory rename (the attribute
    prefetch has its own pool of ``parallel_heads``)."""
    return max(4, options.parallel_count * 2)


def connection_pool_size(options: Options) -> int:
    """Connections to keep per host: one for every thread that can send a request at once (the
    FUSE threads, the I/O pool, the attribute pool, the read pool), so none is opened only to
    be discarded ("Connection pool is full") and no pool waits for another's connections."""
    return fuse_threads(options) + io_threads(options) + options.parallel_heads + options.parallel_reads


def option_fields() -> List[dataclasses.Field]:
    """The ``-o`` options of cosfs itself (not the FUSE pass-through list)."""
    return [item for item in dataclasses.fields(Options) if item.metadata.get("parse")]


def _lookup() -> Dict[str, dataclasses.Field]:
    table = {}
    for item in option_fields():
        table[item.name] = item
        for alias in item.metadata["aliases"]:
            table[alias] = item
    return table


def split_option_string(text: str) -> List[Tuple[str, str]]:
    """``"a=1,b,c=x"`` to ``[("a", "1"), ("b", ""), ("c", "x")]``."""
    pairs = []
    for item in text.split(","):
        item = item.strip()
        if item:
            name, _, value = item.partition("=")
            pairs.append((name.strip(), value.strip()))
    return pairs


def parse_options(pairs: Iterable[Tuple[str, str]]) -> Options:
    """Validate ``(name, value)`` pairs into ``Options``; ConfigError names the bad one."""
    table = _lookup()
    values: Dict[str, Any] = {}
    fuse: List[Tuple[str, str]] = []
    for name, text in pairs:
        declared = table.get(name)
        if declared is None:
            if name in FUSE_PASSTHROUGH:
                fuse.append((name, text))
                continue
            if name in MOUNT_ONLY or name.startswith(MOUNT_ONLY_PREFIXES):
                continue
            raise ConfigError(f"unknown option '{name}'; run 'cosfs --help' for the list")
        try:
            values[declared.name] = declared.metadata["parse"](text)
        except ValueError as exc:
            raise ConfigError(f"bad value {text!r} for option '{name}': {exc}") from None
    return Options(**values, fuse=tuple(fuse))


def options_from_string(text: str) -> Options:
    return parse_options(split_option_string(text))


def options_from_arguments(values: Iterable[str]) -> Options:
    """``Options`` from every ``-o`` argument of a command line (each ``a=1,b,c=x``)."""
    return parse_options(pair for text in values for pair in split_option_string(text))


def options_help() -> str:
    """One line per option: name, default, what it does."""
    lines = []
    for item in option_fields():
        shown = f"{item.default:03o}" if item.metadata["parse"] is _octal else item.default
        default = "" if item.default is None else f" (default {shown})"
        lines.append(f"  {item.name:<22} {item.metadata['help']}{default}")
    return "\n".join(lines)
