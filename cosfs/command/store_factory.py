"""Build the store a mount talks to: the one place that picks the XML or the JSON API client.

A store can be used on its own, without FUSE, from a short script::

    from cosfs.command.store_factory import open_store
    store = open_store("examplebucket-1250000000", "api=json,endpoint=http://127.0.0.1:9000")
    print(store.list_page(""))
"""

from __future__ import annotations

from typing import Optional

from cosfs.command.log import remember_credentials
from cosfs.command.options import Options, connection_pool_size, options_from_string
from cosfs.store.endpoints import Bucket, json_download_endpoint, json_endpoint, xml_endpoint
from cosfs.store.interface import Store
from cosfs.store.json_store import JsonStore
from cosfs.store.xml_store import XmlStore
from cosfs.wire.credentials import CredentialProvider, resolve_credentials
from cosfs.wire.errors import ConfigError
from cosfs.wire.retry import RetryPolicy
from cosfs.wire.transport import RequestObserver, Transport, TransportOptions


def build_transport(options: Options, observer: Optional[RequestObserver] = None) -> Transport:
    """One pooled transport per mount, sized and timed by the options; ``observer`` hears how
    each request ended (the mount's ``RequestStats``)."""
    return Transport(
        TransportOptions(
            pool_size=connection_pool_size(options),
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            verify_tls=not options.no_check_certificate,
        ),
        RetryPolicy(retries=options.retries, deadline=options.max_retry_time),
        observer=observer,
    )


def build_store(
    bucket_name: str,
    options: Options,
    credentials: Optional[CredentialProvider] = None,
    transport: Optional[Transport] = None,
) -> Store:
    """The store for ``bucket_name`` (``name-appid``) as the options describe it.

    Whatever credentials it signs with are shown to the log's redaction filter first
    (``remember_credentials``), so no log line can hold them.
    """
    bucket = Bucket.parse(bucket_name)
    if not options.region and not options.endpoint:
        raise ConfigError(
            "no region given: add -o region=REGION (as in the bucket's domain, e.g. ap-guangzhou) "
            "or -o endpoint=URL"
        )
    region = options.region or "ap-guangzhou"
    if credentials is None:
        credentials = resolve_credentials(
            bucket.full_name, passwd_file=options.passwd_file, public_bucket=options.public_bucket
        )
    credentials = remember_credentials(credentials)
    transport = transport or build_transport(options)
    if options.api == "json":
        return JsonStore(
            bucket,
            json_endpoint(bucket, region, options.endpoint),
            json_download_endpoint(bucket, region, options.download_endpoint, options.endpoint),
            credentials,
            transport,
        )
    return XmlStore(
        bucket,
        xml_endpoint(bucket, region, options.endpoint, options.path_style),
        credentials,
        transport,
        region=region,
        signature=options.signature,
    )


def open_store(bucket_name: str, option_string: str = "") -> Store:
    """``build_store`` from an ``-o``-style string such as ``"api=json,region=ap-shanghai"``."""
    return build_store(bucket_name, options_from_string(option_string))
