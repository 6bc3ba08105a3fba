"""Option parsing: defaults, aliases, validation, unknown options."""

from __future__ import annotations

import pytest

from cosfs.command.options import (
    Options,
    connection_pool_size,
    fuse_threads,
    io_threads,
    options_from_string,
    options_help,
)
from cosfs.command.store_factory import build_transport
from cosfs.wire.errors import ConfigError
from cosfs.wire.retry import RetryPolicy


def test_defaults():
    options = options_from_string("")
    assert options == Options()
    assert options.api == "xml" and options.signature == "cos"
    assert (options.retries, options.max_retry_time) == (RetryPolicy().retries, RetryPolicy().deadline)


def test_the_transport_gets_the_timeouts_and_the_retry_deadline():
    transport = build_transport(options_from_string("connect_timeout=2,read_timeout=7,retries=4,max_retry_time=12"))
    assert (transport.options.connect_timeout, transport.options.read_timeout) == (2, 7)
    assert (transport.retry.retries, transport.retry.deadline) == (4, 12)


@pytest.mark.parametrize("parallel_count", [1, 4, 8, 32, 256])
def test_the_connection_pool_has_room_for_every_thread_that_sends_requests(parallel_count):
    """Finding 11: with fewer connections than threads urllib3 warns "Connection pool is
    full, discarding connection" and opens a new connection per request beyond the pool."""
    options = options_from_string(f"parallel_count={parallel_count}")
    assert connection_pool_size(options) >= fuse_threads(options) + io_threads(options)
    assert build_transport(options).options.pool_size == connection_pool_size(options)


def test_values_and_aliases_are_parsed():
    options = options_from_string("api=json,region=ap-shanghai,url=http://127.0.0.1:9,retries=2,"
                                  "use_path_request_style,connect_timeout=2.5")
    assert options.api == "json" and options.region == "ap-shanghai"
    assert options.endpoint == "http://127.0.0.1:9" and options.path_style is True
    assert options.retries == 2 and options.connect_timeout == 2.5


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("stat_cach_ttl=5", "unknown option 'stat_cach_ttl'"),
        ("api=soap", "bad value 'soap' for option 'api'"),
        ("retries=-1", "option 'retries'"),
        ("connect_timeout=fast", "option 'connect_timeout'"),
        ("max_retry_time=0", "option 'max_retry_time'"),
        ("public_bucket=maybe", "option 'public_bucket'"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(text, fragment):
    with pytest.raises(ConfigError) as raised:
        options_from_string(text)
    assert fragment in str(raised.value)


def test_help_lists_every_option_with_its_default():
    text = options_help()
    assert "signature" in text and "default cos" in text and "passwd_file" in text


def test_the_kernel_keeps_attributes_and_names_as_long_as_the_caches_do():
    """Issue 10: libfuse's 1 s default sent every repeated lookup back to Python; the kernel
    now keeps what cosfs answered for the TTLs, unless ``-o attr_timeout=`` says otherwise."""
    from cosfs.command.mount import fuse_mount_options

    default = fuse_mount_options(options_from_string(""), "cosfs#b")
    assert (default["attr_timeout"], default["entry_timeout"], default["negative_timeout"]) == (30.0, 30.0, 5.0)
    short = fuse_mount_options(options_from_string("stat_cache_ttl=2,negative_cache_ttl=0"), "cosfs#b")
    assert (short["attr_timeout"], short["entry_timeout"], short["negative_timeout"]) == (2.0, 2.0, 0.0)
    assert fuse_mount_options(options_from_string("attr_timeout=7"), "cosfs#b")["attr_timeout"] == "7"
