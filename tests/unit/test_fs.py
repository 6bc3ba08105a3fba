"""CosFilesystem over the in-memory store: POSIX semantics and request costs, no kernel."""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import threading

import pytest

from cosfs.command.mount import build_filesystem
from cosfs.command.options import options_from_string
from cosfs.metadata import xattrs
from cosfs.store.interface import ObjectInfo
from cosfs.wire.errors import CosError, CosfsError
from tests.support.clock import FakeClock
from tests.support.fake_store import FakeStore
from tests.support.mounted import wait_until


@pytest.fixture
def store():
    return FakeStore()


@pytest.fixture
def clock():
    return FakeClock(1_700_000_000.0)


@pytest.fixture
def fs(store, clock, tmp_path):
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0,multipart_threshold=1,multipart_size=1")
    return build_filesystem(store, options, "", "bucket-1250000000", clock=clock, ttl_clock=clock)


def write_file(fs, path, data=b"", mode=0o644):
    fh = fs.create(path, mode, 1000, 1000)
    if data:
        fs.write(fh, data, 0)
    fs.flush(fh)
    fs.release(fh)


def read_file(fs, path):
    fh = fs.open(path, os.O_RDONLY)
    try:
        return fs.read(fh, 1 << 30, 0)
    finally:
        fs.release(fh)


def errno_of(call, *args):
    with pytest.raises(CosfsError) as raised:
        call(*args)
    return raised.value.errno


# --- files ----------------------------------------------------------------------------------


def test_create_write_close_stores_data_and_metadata(fs, store):
    write_file(fs, "/a.txt", b"hello", 0o640)
    stored = store.objects["a.txt"]
    assert stored.data == b"hello"
    assert stored.meta["mode"] == str(stat.S_IFREG | 0o640)
    assert stored.meta["uid"] == "1000" and stored.meta["mtime"] == "1700000000"
    attr = fs.getattr("/a.txt")
    assert (attr.size, attr.kind, stat.S_IMODE(attr.mode)) == (5, "file", 0o640)


def test_new_file_is_not_stored_before_flush_and_is_visible_meanwhile(fs, store):
    fh = fs.create("/new.txt", 0o644, 0, 0)
    fs.write(fh, b"abc", 0)
    assert "new.txt" not in store.objects
    assert fs.getattr("/new.txt").size == 3
    assert ("new.txt", stat.S_IFREG) in [(e.name, e.type) for e in fs.readdir("/")]
    assert fs.read(fh, 10, 0) == b"abc", "reading a file open for writing sees what was written"
    fs.release(fh)
    assert store.objects["new.txt"].data == b"abc"


def test_failed_upload_reports_error_keeps_data_and_old_object(fs, store):
    write_file(fs, "/keep.txt", b"old")
    fh = fs.open("/keep.txt", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, b"new data", 0)
    store.fail("put_object", times=3)
    assert errno_of(fs.flush, fh) == errno.EIO
    assert store.objects["keep.txt"].data == b"old", "the old object is untouched"
    staged = fs.files.handle(fh).node.staged
    assert staged.path.exists() and staged.read(0, 100) == b"new data"
    fs.release(fh)
    assert staged.path.exists(), "the data stays in the staging area after close"


def test_large_file_goes_through_multipart_and_failure_aborts(fs, store):
    data = os.urandom(3 * 1024 * 1024 + 17)
    write_file(fs, "/big.bin", data)
    assert store.objects["big.bin"].data == data
    assert store.calls["put_part"] == 4 and store.calls["complete"] == 1
    fh = fs.open("/big.bin", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, os.urandom(2 * 1024 * 1024), 0)
    store.fail("put_part", times=1)
    assert errno_of(fs.flush, fh) == errno.EIO
    assert store.calls["abort"] == 1 and store.objects["big.bin"].data == data
    fs.release(fh)


def test_partial_overwrite_and_append_keep_existing_bytes(fs, store):
    write_file(fs, "/f", b"0123456789")
    fh = fs.open("/f", os.O_WRONLY)
    fs.write(fh, b"AB", 2)
    fs.release(fh)
    assert store.objects["f"].data == b"01AB456789"
    fh = fs.open("/f", os.O_WRONLY | os.O_APPEND)
    fs.write(fh, b"xyz", 0)
    fs.release(fh)
    assert store.objects["f"].data == b"01AB456789xyz"


def test_truncate_by_path_without_an_open_handle(fs, store):
    write_file(fs, "/t", b"0123456789")
    fs.truncate("/t", 4)
    assert store.objects["t"].data == b"0123"
    fs.truncate("/t", 6)
    assert store.objects["t"].data == b"0123\0\0"


def test_reads_of_existing_object(fs, store):
    store.put_raw("r.bin", bytes(range(256)) * 100)
    assert read_file(fs, "/r.bin") == bytes(range(256)) * 100


# --- namespace ------------------------------------------------------------------------------


def test_mkdir_rmdir_and_errors(fs, store):
    fs.mkdir("/d", 0o750, 5, 6)
    assert "d/" in store.objects and store.objects["d/"].meta["mode"] == str(stat.S_IFDIR | 0o750)
    assert errno_of(fs.mkdir, "/d", 0o755, 0, 0) == errno.EEXIST
    assert errno_of(fs.mkdir, "/missing/sub", 0o755, 0, 0) == errno.ENOENT
    write_file(fs, "/d/x", b"1")
    assert errno_of(fs.rmdir, "/d") == errno.ENOTEMPTY
    assert errno_of(fs.mkdir, "/d/x/y", 0o755, 0, 0) == errno.ENOTDIR
    assert errno_of(fs.rmdir, "/d/x") == errno.ENOTDIR
    assert errno_of(fs.unlink, "/d") == errno.EISDIR
    fs.unlink("/d/x")
    fs.rmdir("/d")
    assert not store.objects
    assert errno_of(fs.getattr, "/d") == errno.ENOENT


def test_prefix_only_directories_are_usable(fs, store):
    store.put_raw("implicit/sub/file.txt", b"data")
    assert fs.getattr("/implicit").kind == "dir"
    assert [e.name for e in fs.readdir("/implicit")] == ["sub"]
    assert read_file(fs, "/implicit/sub/file.txt") == b"data"


def test_prefix_only_directories_and_the_root_show_the_mount_time(fs, store, clock):
    """SEMANTICS.md: "A directory without a marker has no time in COS: it (and the mount's
    root) shows the time the mount started, the same at every lookup", whether it is looked
    up alone, found in a listing, or prefetched with its siblings (it showed 1970)."""
    mounted_ns = int(clock() * 1e9)
    store.put_raw("alone/file.txt", b"x")
    for name in ("listed", "sibling"):
        store.put_raw(f"{name}/file.txt", b"x")
    store.put_raw("b.txt", b"x")
    clock.advance(3600)

    alone = fs.getattr("/alone")  # HEAD file, HEAD marker, one-key LIST
    fs.readdir("/")
    listed = fs.getattr("/listed")  # the first miss after the listing: one HEAD
    fs.getattr("/b.txt")  # the second: a window of the siblings after it, /sibling among them
    wait_until(lambda: fs.lookup.fetches.pending() == 0, what="the prefetch to finish")
    prefetched = fs.lookup.known("/sibling")

    assert [attr.mtime_ns for attr in (alone, listed, prefetched)] == [mounted_ns] * 3
    assert fs.getattr("/").mtime_ns == mounted_ns
    clock.advance(3600)
    assert fs.getattr("/").mtime_ns == mounted_ns, "the root's time must not move on every stat"


def test_a_directory_cos_dates_0_gets_the_mount_time_but_a_stored_time_of_0_stays(fs, store, clock, monkeypatch):
    """The JSON API's stat of a directory without a marker answers, with mtime 0."""
    mounted_ns = int(clock() * 1e9)
    store.put_raw("d/f", b"x")
    store.put_raw("epoch/", b"", {"mode": str(stat.S_IFDIR | 0o755), "mtime": "0"})
    real_stat = store.stat

    def json_like_stat(key):
        return ObjectInfo(key=key, size=0, mtime_ns=0, is_dir=True) if key == "d/" else real_stat(key)

    monkeypatch.setattr(store, "stat", json_like_stat)

    assert fs.getattr("/d").mtime_ns == mounted_ns
    assert fs.getattr("/epoch").mtime_ns == 0, "touch -d @0 on a directory is kept"


def test_rename_file_replaces_target_and_follows_posix_errors(fs, store):
    write_file(fs, "/a", b"A")
    write_file(fs, "/b", b"B")
    fs.rename("/a", "/b")
    assert store.objects["b"].data == b"A" and "a" not in store.objects
    fs.mkdir("/dir", 0o755, 0, 0)
    write_file(fs, "/dir/inside", b"x")
    assert errno_of(fs.rename, "/b", "/dir") == errno.EISDIR
    fs.mkdir("/empty", 0o755, 0, 0)
    assert errno_of(fs.rename, "/empty", "/dir") == errno.ENOTEMPTY
    assert errno_of(fs.rename, "/dir", "/dir/inside/deeper") in (errno.EINVAL, errno.ENOTDIR)


def test_rename_directory_moves_whole_subtree(fs, store):
    fs.mkdir("/src", 0o755, 0, 0)
    fs.mkdir("/src/sub", 0o755, 0, 0)
    write_file(fs, "/src/sub/f1", b"1")
    write_file(fs, "/src/f2", b"2")
    fs.rename("/src", "/dst")
    assert sorted(store.objects) == ["dst/", "dst/f2", "dst/sub/", "dst/sub/f1"]
    assert read_file(fs, "/dst/sub/f1") == b"1"
    assert errno_of(fs.getattr, "/src") == errno.ENOENT


def test_symlinks_and_dangling_symlinks(fs, store):
    write_file(fs, "/target", b"t")
    fs.symlink("/link", "target", 0, 0)
    fs.symlink("/dangling", "nowhere", 0, 0)
    assert fs.getattr("/link").kind == "symlink"
    assert fs.readlink("/link") == "target" and fs.readlink("/dangling") == "nowhere"
    assert store.objects["link"].data == b"target"


def test_link_is_refused_with_eperm(fs):
    assert errno_of(fs.link, "/x", "/y") == errno.EPERM


def test_chmod_chown_utimens_update_metadata_in_place(fs, store, clock):
    """Of a file not stored moments ago (a change of one just stored is held: test_pending_meta)."""
    write_file(fs, "/m", b"data")
    clock.advance(60)
    fs.chmod("/m", 0o600)
    fs.chown("/m", 42, -1)
    fs.utimens("/m", 1_600_000_000_123_456_789)
    meta = store.objects["m"].meta
    assert meta["mode"] == str(stat.S_IFREG | 0o600) and meta["uid"] == "42" and meta["gid"] == "1000"
    assert (meta["mtime"], meta["mtime-nsec"]) == ("1600000000", "123456789")
    assert store.objects["m"].data == b"data"


def test_utimens_on_an_open_dirty_file_is_applied_by_its_upload(fs, store):
    fh = fs.create("/p", 0o644, 0, 0)
    fs.write(fh, b"x", 0)
    fs.utimens("/p", 1_500_000_000 * 10**9)
    fs.release(fh)
    assert store.objects["p"].meta["mtime"] == "1500000000"
    assert store.calls["set_meta"] == 0


# --- caches and request costs ---------------------------------------------------------------


def test_warm_listing_and_stats_cost_no_requests(fs, store):
    for i in range(50):
        store.put_raw(f"dir/f{i:02d}", b"x" * i, {"mode": str(stat.S_IFREG | 0o600)})
    names = [e.name for e in fs.readdir("/dir")]
    assert len(names) == 50
    for name in names:
        fs.getattr(f"/dir/{name}")
    cold = sum(store.calls.values())
    assert store.calls["list_page"] <= 2 and store.calls["stat"] <= 50 + 2
    for name in names:
        assert stat.S_IMODE(fs.getattr(f"/dir/{name}").mode) == 0o600
    fs.readdir("/dir")
    assert sum(store.calls.values()) == cold, "a warm ls -l costs no request"


def test_objects_created_behind_our_back_appear_after_the_ttl(fs, store, clock):
    fs.readdir("/")
    assert errno_of(fs.getattr, "/later") == errno.ENOENT
    store.put_raw("later", b"x")
    assert errno_of(fs.getattr, "/later") == errno.ENOENT, "cached until the TTL ends"
    clock.now += 31
    assert fs.getattr("/later").size == 1


def test_store_errors_keep_their_errno(fs, store):
    store.fail("stat", CosError("denied", status=403, code="AccessDenied"))
    assert errno_of(fs.getattr, "/x") == errno.EACCES


def test_read_only_mount_refuses_writes(store, clock, tmp_path):
    options = options_from_string(f"ro,cache_dir={tmp_path}")
    fs = build_filesystem(store, options, "", "bucket-1250000000", clock=clock)
    assert errno_of(fs.mkdir, "/d", 0o755, 0, 0) == errno.EROFS
    assert errno_of(fs.create, "/f", 0o644, 0, 0) == errno.EROFS


def test_mount_prefix_maps_paths_below_it(store, clock, tmp_path):
    options = options_from_string(f"cache_dir={tmp_path}")
    fs = build_filesystem(store, options, "sub/dir/", "bucket-1250000000", clock=clock)
    write_file(fs, "/f", b"1")
    assert "sub/dir/f" in store.objects


def test_a_prefix_only_directory_survives_the_removal_of_its_last_file(fs, store):
    store.put_raw("implicit/only.txt", b"x")
    fs.unlink("/implicit/only.txt")
    assert "implicit/" in store.objects, "a marker keeps the emptied directory"
    assert fs.getattr("/implicit").kind == "dir" and fs.readdir("/implicit") == []


def test_removing_a_file_from_a_directory_with_a_marker_costs_no_extra_write(fs, store):
    fs.mkdir("/d", 0o755, 0, 0)
    write_file(fs, "/d/f", b"1")
    creates = store.calls["create_dir"]
    fs.unlink("/d/f")
    assert store.calls["create_dir"] == creates


def test_chmod_of_a_file_open_for_reading_is_visible_at_once(fs, store):
    write_file(fs, "/r", b"data")
    fh = fs.open("/r", os.O_RDONLY)
    fs.chmod("/r", 0o600)
    assert stat.S_IMODE(fs.getattr("/r").mode) == 0o600
    fs.release(fh)


def test_keeping_an_emptied_directory_never_fails_the_unlink(fs, store):
    store.put_raw("gone/last", b"x")
    store.fail("create_dir", CosError("denied", status=403, code="AccessDenied"))
    fs.unlink("/gone/last")
    assert "gone/last" not in store.objects


# --- review debts (issue 8): each test failed before its fix -------------------------------


def test_a_local_create_does_not_extend_the_lifetime_of_the_cached_listing(fs, store, clock):
    """SEMANTICS.md: what others change "becomes visible after at most" list_cache_ttl (30 s),
    even while this mount keeps creating files in the same directory."""
    fs.readdir("/")
    store.put_raw("foreign.txt", b"x")
    for _ in range(2):
        clock.advance(20)
        write_file(fs, f"/local-{clock.now}.txt", b"y")
    clock.advance(1)  # 41 s after the listing: it must have been refetched
    assert "foreign.txt" in [e.name for e in fs.readdir("/")]
    assert fs.getattr("/foreign.txt").size == 1


def test_concurrent_edits_of_one_cached_listing_lose_no_entry(fs):
    """Compound cache updates are atomic: 8 threads adding 200 names each keep all 1,600."""
    fs.readdir("/")
    attr = fs.lookup.getattr("/")
    file_attr = dataclasses.replace(attr, kind="file", mode=stat.S_IFREG | 0o644)

    def add(thread: int) -> None:
        for index in range(200):
            fs.lookup.added(f"/t{thread}-{index}", file_attr)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(fs.lookup.known_listing("/").entries) == 1600


def test_a_name_the_server_refuses_leaves_the_namespace_at_close(fs, store):
    """A failed first upload leaves no trace in the listing or the stat cache; its data is
    kept in the staging area (SEMANTICS.md: "a failed upload leaves no empty object")."""
    refusal = CosError("refused", status=400, code="InvalidObjectName")
    store.fail("put_object", refusal)
    fh = fs.create("/refused.txt", 0o644, 0, 0)
    fs.write(fh, b"data", 0)
    assert errno_of(fs.flush, fh) == errno.EINVAL
    fs.release(fh)
    assert "refused.txt" not in [e.name for e in fs.readdir("/")]
    assert errno_of(fs.getattr, "/refused.txt") == errno.ENOENT
    assert errno_of(fs.unlink, "/refused.txt") == errno.ENOENT
    assert "refused.txt" not in store.objects
    kept = list(fs.files.staging.directory.glob("*.staged"))
    assert [path.read_bytes() for path in kept] == [b"data"]


@pytest.mark.parametrize("path", ["/" + "n" * 256, "/d/" + "n" * 256, "/" + "/".join(["k" * 200] * 5)])
def test_a_name_too_long_is_enametoolong_whatever_the_cache_holds(fs, path):
    fs.mkdir("/d", 0o755, 0, 0)
    fs.readdir("/")
    fs.readdir("/d")  # both listings cached: before, a cached listing answered ENOENT
    assert errno_of(fs.getattr, path) == errno.ENAMETOOLONG
    assert errno_of(fs.create, path, 0o644, 0, 0) == errno.ENAMETOOLONG
    assert errno_of(fs.mkdir, path, 0o755, 0, 0) == errno.ENAMETOOLONG
    assert errno_of(fs.symlink, path, "target", 0, 0) == errno.ENAMETOOLONG
    write_file(fs, "/short", b"x")
    assert errno_of(fs.rename, "/short", path) == errno.ENAMETOOLONG


@pytest.mark.parametrize("name", ["tab\there", "new\nline", "nul\0", "esc\x1b[0m", "del\x7f", "\x01"])
def test_a_control_character_is_einval_at_once_for_every_way_to_make_a_name(fs, store, name):
    """SEMANTICS.md: "A name with a control character (U+0000 to U+001F, U+007F) fails with
    EINVAL at once, for every operation, without a request" (it used to fail at close)."""
    fs.mkdir("/d", 0o755, 0, 0)
    write_file(fs, "/d/ok.txt", b"x")
    fs.readdir("/d")
    before = sum(store.calls.values())
    path = "/d/" + name
    assert errno_of(fs.getattr, path) == errno.EINVAL
    assert errno_of(fs.create, path, 0o644, 0, 0) == errno.EINVAL
    assert errno_of(fs.mkdir, path, 0o755, 0, 0) == errno.EINVAL
    assert errno_of(fs.symlink, path, "ok.txt", 0, 0) == errno.EINVAL
    assert errno_of(fs.mknod, path, stat.S_IFIFO | 0o644, 0, 0, 0) == errno.EINVAL
    assert errno_of(fs.rename, "/d/ok.txt", path) == errno.EINVAL
    assert errno_of(fs.rename, "/d/ok.txt", "/" + name + "/x") == errno.EINVAL
    assert sum(store.calls.values()) == before, "a refused name cost a request"
    assert [e.name for e in fs.readdir("/d")] == ["ok.txt"]


@pytest.mark.parametrize("type_bits,rdev", [(stat.S_IFIFO, 0), (stat.S_IFSOCK, 0),
                                             (stat.S_IFCHR, os.makedev(1, 3)), (stat.S_IFBLK, os.makedev(8, 1))])
def test_mknod_stores_an_empty_object_with_the_type_and_device_number(fs, store, type_bits, rdev):
    """SEMANTICS.md: FIFOs, sockets and device files are empty objects whose ``mode`` carries
    the type and ``rdev`` a device's number, as s3fs stores them: one PUT."""
    fs.mknod("/node", type_bits | 0o640, rdev, 1000, 100)

    assert store.calls["put_object"] == 1
    stored = store.stat("node")
    assert stored.size == 0 and stored.meta["mode"] == str(type_bits | 0o640)
    assert stored.meta.get("rdev", "0") == str(rdev)
    attr = fs.getattr("/node")
    assert (attr.kind, attr.mode, attr.rdev, attr.uid, attr.gid) == ("special", type_bits | 0o640, rdev, 1000, 100)
    assert [(entry.name, entry.type) for entry in fs.readdir("/")] == [("node", type_bits)]


def test_mknod_of_an_existing_name_is_eexist_and_of_a_directory_type_einval(fs):
    fs.mknod("/fifo", stat.S_IFIFO | 0o644, 0, 0, 0)
    assert errno_of(fs.mknod, "/fifo", stat.S_IFIFO | 0o644, 0, 0, 0) == errno.EEXIST
    assert errno_of(fs.mknod, "/d", stat.S_IFDIR | 0o755, 0, 0, 0) == errno.EINVAL


def test_a_special_file_read_back_from_cos_keeps_type_and_rdev(fs, store, clock, tmp_path):
    fs.mknod("/tty", stat.S_IFCHR | 0o620, os.makedev(4, 1), 0, 5)
    fresh = build_filesystem(store, options_from_string(f"cache_dir={tmp_path / 'other'}"), "", "bucket-1250000000",
                             clock=clock, ttl_clock=clock)

    attr = fresh.getattr("/tty")

    assert (stat.S_IFMT(attr.mode), attr.rdev, attr.to_stat()["st_rdev"]) == (stat.S_IFCHR, os.makedev(4, 1), 1025)


# --- extended attributes --------------------------------------------------------------------


def test_setxattr_is_stored_in_place_and_read_back_without_a_request(fs, store, clock):
    write_file(fs, "/f", b"data")
    clock.advance(60)  # past metadata_delay: the change is applied at once
    puts = store.calls["put_object"]

    fs.setxattr("/f", "user.a", b"\x00\xffvalue", 0)

    assert store.calls["set_meta"] == 1 and store.calls["put_object"] == puts
    before = sum(store.calls.values())
    assert fs.getxattr("/f", "user.a") == b"\x00\xffvalue"
    assert fs.listxattr("/f") == ["user.a"]
    assert sum(store.calls.values()) == before
    assert xattrs.decode(store.stat("f").meta) == {"user.a": b"\x00\xffvalue"}


def test_xattr_flags_and_missing_names(fs, clock):
    write_file(fs, "/f", b"data")
    clock.advance(60)
    assert errno_of(fs.getxattr, "/f", "user.a") == errno.ENODATA
    assert errno_of(fs.setxattr, "/f", "user.a", b"v", xattrs.XATTR_REPLACE) == errno.ENODATA
    fs.setxattr("/f", "user.a", b"v", xattrs.XATTR_CREATE)
    assert errno_of(fs.setxattr, "/f", "user.a", b"w", xattrs.XATTR_CREATE) == errno.EEXIST
    fs.setxattr("/f", "user.a", b"w", xattrs.XATTR_REPLACE)
    assert fs.getxattr("/f", "user.a") == b"w"
    fs.removexattr("/f", "user.a")
    assert errno_of(fs.removexattr, "/f", "user.a") == errno.ENODATA
    assert fs.listxattr("/f") == []


def test_an_xattr_that_overflows_the_metadata_limit_is_e2big_without_a_request(fs, store, clock):
    write_file(fs, "/f", b"data")
    clock.advance(60)
    fs.getattr("/f")  # its attributes cached again (the TTL ran out)
    before = sum(store.calls.values())

    assert errno_of(fs.setxattr, "/f", "user.big", b"x" * 1600, 0) == errno.E2BIG

    assert sum(store.calls.values()) == before
    assert errno_of(fs.getxattr, "/f", "user.big") == errno.ENODATA


def test_no_xattr_stores_metadata_past_the_limit_with_the_ctime_it_adds(fs, store, clock):
    """SEMANTICS.md: "An attribute that would take the object's metadata (the names and
    values of all its `x-cos-meta-*`, mode and times included) past COS's 2 KB is refused
    with E2BIG before any request": the ``ctime`` the change itself writes counts too (a
    file written here has none stored yet)."""
    limit = store.limits.max_meta_bytes
    refused = 0
    for length in range(1400, 1560):
        path = f"/f{length}"
        write_file(fs, path, b"data")
        clock.advance(60)
        try:
            fs.setxattr(path, "user.big", b"x" * length, 0)
        except CosfsError as failure:
            assert failure.errno == errno.E2BIG
            refused += 1
            continue
        assert xattrs.meta_bytes(store.stat(path[1:]).meta) <= limit, length
    assert 0 < refused < 160, "the lengths tried straddle the limit"


def test_an_xattr_of_a_file_being_written_rides_with_its_upload(fs, store):
    fh = fs.create("/f", 0o644, 0, 0)
    fs.write(fh, b"data", 0)

    fs.setxattr("/f", "user.a", b"v", 0)

    assert store.calls["set_meta"] == 0 and store.stat("f") is None
    fs.flush(fh)
    fs.release(fh)
    assert store.calls["set_meta"] == 0
    assert xattrs.decode(store.stat("f").meta) == {"user.a": b"v"}


def test_an_xattr_of_a_directory_goes_on_its_marker(fs, store):
    fs.mkdir("/d", 0o755, 0, 0)

    fs.setxattr("/d", "user.d", b"dir", 0)

    assert xattrs.decode(store.stat("d/").meta) == {"user.d": b"dir"}
    assert fs.getxattr("/d", "user.d") == b"dir"


def test_keys_with_control_characters_are_not_listed(fs, store):
    """Another S3-compatible store may hold such keys; they could be listed but never opened."""
    store.put_raw("a\x01b", b"x")
    store.put_raw("fine", b"x")
    assert [e.name for e in fs.readdir("/")] == ["fine"]


def test_max_stat_cache_size_0_turns_the_stat_cache_off(store, clock, tmp_path):
    """README: ``max_stat_cache_size=0`` means no attribute cache (every lookup asks COS)."""
    options = options_from_string(f"cache_dir={tmp_path / 's'},ensure_diskfree=0,max_stat_cache_size=0")
    fs = build_filesystem(store, options, "", "bucket-1250000000", clock=clock, ttl_clock=clock)
    write_file(fs, "/a", b"x")
    before = store.calls["stat"]
    fs.getattr("/a")
    fs.getattr("/a")
    assert store.calls["stat"] == before + 2


# --- the persistent attribute cache --------------------------------------------------------


def remounted(store, clock, tmp_path, extra: str = ""):
    """A new filesystem over the same store and ``cache_dir``: what a remount starts from."""
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0{extra}")
    return build_filesystem(store, options, "", "bucket-1250000000", clock=clock, ttl_clock=clock)


def test_a_remount_reuses_attributes_of_unchanged_files_and_heads_changed_ones(fs, store, clock, tmp_path):
    for name in ("a", "b", "c"):
        store.put_raw(name, b"data", {"mode": str(0o100640)})
    fs.readdir("/")
    for name in ("a", "b", "c"):
        fs.getattr("/" + name)
    fs.lookup.persistent.close()
    store.put_raw("b", b"longer data", {"mode": str(0o100600)})

    again = remounted(store, clock, tmp_path)
    store.calls.clear()
    again.readdir("/")
    modes = {name: stat.S_IMODE(again.getattr("/" + name).mode) for name in ("a", "b", "c")}

    assert modes == {"a": 0o640, "b": 0o600, "c": 0o640}
    assert again.getattr("/b").size == len(b"longer data")
    assert store.calls["stat"] == 1, store.calls


def test_a_chmod_through_the_mount_within_the_second_of_its_head_is_not_undone_by_a_remount(fs, store, clock,
                                                                                             tmp_path):
    """The copy-in-place of a chmod keeps ETag, size and (within its second) Last-Modified:
    only dropping the stored entry keeps the old mode from coming back."""
    store.put_raw("a", b"data", {"mode": str(0o100644)})
    fs.readdir("/")
    fs.getattr("/a")
    fs.chmod("/a", 0o600)
    fs.lookup.persistent.close()

    again = remounted(store, clock, tmp_path)
    again.readdir("/")
    assert stat.S_IMODE(again.getattr("/a").mode) == 0o600


def test_files_written_through_the_mount_cost_no_head_after_a_remount(fs, store, clock, tmp_path):
    """Own uploads, metadata changes and renames are kept with the ETag and size COS answered."""
    write_file(fs, "/tmp.x", b"written here")
    fs.chmod("/tmp.x", 0o600)
    fs.rename("/tmp.x", "/kept")
    write_file(fs, "/other", b"abc")
    fs.lookup.persistent.close()

    again = remounted(store, clock, tmp_path)
    store.calls.clear()
    again.readdir("/")
    kept, other = again.getattr("/kept"), again.getattr("/other")

    assert (stat.S_IMODE(kept.mode), kept.size, other.size) == (0o600, len(b"written here"), 3)
    assert store.calls["stat"] == 0, store.calls


def test_a_walk_of_an_unlisted_directory_lists_it_on_the_second_miss(fs, store, clock, tmp_path):
    """rsync's receiver stats each destination name without listing the directory: after a
    remount the second miss lists it, proving the stored entries and answering new names."""
    for number in range(20):
        store.put_raw(f"d/f{number:02d}", b"data", {"mode": str(0o100640)})
    fs.readdir("/d")
    for number in range(20):
        fs.getattr(f"/d/f{number:02d}")
    fs.lookup.persistent.close()

    again = remounted(store, clock, tmp_path)
    store.calls.clear()
    modes = {stat.S_IMODE(again.getattr(f"/d/f{number:02d}").mode) for number in range(20)}
    assert again.lookup.find("/d/new-name") is None

    assert modes == {0o640}
    assert store.calls["stat"] == 1 and store.calls["list_page"] == 1, store.calls


def test_attr_cache_0_keeps_no_database(store, clock, tmp_path):
    off = remounted(store, clock, tmp_path, ",attr_cache=0")
    store.put_raw("a", b"data")
    off.readdir("/")
    off.getattr("/a")
    assert off.lookup.persistent is None
    assert not (tmp_path / "staging" / "bucket-1250000000" / "attrs").exists()


@pytest.fixture
def trusting(store, clock, tmp_path):
    options = options_from_string(f"cache_dir={tmp_path / 'staging'},ensure_diskfree=0,trust_list=1")
    return build_filesystem(store, options, "", "bucket-1250000000", clock=clock, ttl_clock=clock)


def test_trust_list_takes_listed_files_attributes_from_the_list_page_without_a_head(trusting, store):
    """SEMANTICS.md (``trust_list``): "a listed file's attributes are taken from its list entry
    alone ... Size is the entry's size, mtime its Last-Modified, mode `0666` minus `umask`";
    "uid, gid, mode and mtime that cosfs, COSFS or s3fs wrote in `x-cos-meta-*` are not seen"."""
    store.put_raw("d/a", b"12345", {"mode": str(0o100600), "mtime": "1600000000"})
    listed_mtime = store.list_page("d/").files[0].mtime_ns
    trusting.readdir("/d")
    store.calls.clear()

    attr = trusting.getattr("/d/a")

    assert (attr.size, attr.mtime_ns, stat.S_IMODE(attr.mode)) == (5, listed_mtime, 0o644)
    assert not store.calls, store.calls


def test_trust_list_still_heads_a_path_no_listing_holds(trusting, store):
    """SEMANTICS.md: "A path looked up while no cached listing holds it ... is HEADed as without
    `trust_list`, and then shows its metadata"."""
    store.put_raw("d/a", b"12345", {"mode": str(0o100600)})
    store.calls.clear()

    attr = trusting.getattr("/d/a")

    assert stat.S_IMODE(attr.mode) == 0o600 and store.calls["stat"] == 1 and not store.calls["list_page"]
