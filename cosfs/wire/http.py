"""The HTTP client under the transport: urllib3's connection pools, and the answer they give.

The transport sends through urllib3 directly, not through ``requests``: ``requests``' per-call
machinery (request preparation, environment merging, cookie jars, its ``Response``) was most
of the client CPU of a HEAD, and a cold ``ls -l`` is one HEAD per file (docs/PERFORMANCE.md).
What ``requests`` did for cosfs is done here, the same way:

- TLS certificates are verified against certifi's bundle, the one ``requests`` uses, unless
  ``no_check_certificate`` turns verification off;
- ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` choose a proxy per endpoint,
  read once when the pools are made (a proxy's ``user:password@`` becomes its Basic
  ``Proxy-Authorization``);
- redirects are not followed (COS does not redirect) and urllib3 repeats nothing: the
  transport's loop decides what is repeated, within its one deadline;
- bodies arrive as stored: no ``Accept-Encoding`` is sent and nothing is decompressed, so an
  object stored with ``Content-Encoding: gzip`` reads as its stored bytes, any range of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Dict, Mapping, Optional
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

import certifi
import urllib3
from urllib3 import HTTPHeaderDict
from urllib3.util import Timeout, make_headers, parse_url

#: Hosts whose pools are kept per proxy manager, as ``requests``' ``pool_connections`` did.
_POOLS_PER_MANAGER = 4


@dataclass
class HttpResponse:
    """One answer from COS with its whole body: what the stores read and the error checks judge."""

    status: int
    reason: str
    headers: HTTPHeaderDict
    content: bytes = b""


def proxy_for(url: str, proxies: Mapping[str, str]) -> Optional[str]:
    """The proxy ``url`` goes through under ``proxies`` (``getproxies_environment()``'s shape:
    scheme or ``all`` to proxy URL, ``no`` to the NO_PROXY list), ``None`` for a direct connection."""
    parts = urlsplit(url)
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if not proxy or proxy_bypass_environment(parts.netloc, proxies):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


class ConnectionPools:
    """urllib3's pools to the COS endpoints, direct or through the proxy the environment names;
    safe to share between threads."""

    def __init__(self, pool_size: int, verify_tls: bool, proxies: Optional[Mapping[str, str]] = None) -> None:
        tls = {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()} if verify_tls else {"cert_reqs": "CERT_NONE"}
        self._pool_options = dict(maxsize=pool_size, block=False, retries=False, **tls)
        self._proxies = dict(getproxies_environment() if proxies is None else proxies)
        self._direct = urllib3.PoolManager(_POOLS_PER_MANAGER, **self._pool_options)
        self._managers: Dict[str, urllib3.PoolManager] = {}
        self._lock = threading.Lock()

    def manager_for(self, url: str) -> urllib3.PoolManager:
        """The pool manager for ``url``'s endpoint: direct, or a ``ProxyManager``; decided once per endpoint."""
        scheme_and_host = url.split("/", 3)[:3]
        endpoint = "/".join(scheme_and_host)
        manager = self._managers.get(endpoint)
        if manager is None:
            with self._lock:
                manager = self._managers.get(endpoint) or self._new_manager(endpoint)
                self._managers[endpoint] = manager
        return manager

    def _new_manager(self, endpoint: str) -> urllib3.PoolManager:
        proxy = proxy_for(endpoint, self._proxies)
        if proxy is None:
            return self._direct
        for manager in self._managers.values():
            if isinstance(manager, urllib3.ProxyManager) and manager.proxy_url == proxy:
                return manager
        auth = parse_url(proxy).auth
        headers = make_headers(proxy_basic_auth=unquote(auth)) if auth else None
        return urllib3.ProxyManager(proxy, _POOLS_PER_MANAGER, proxy_headers=headers, **self._pool_options)

    def urlopen(self, method: str, url: str, body: Optional[bytes], headers: Mapping[str, str],
                timeout: Timeout) -> urllib3.BaseHTTPResponse:
        """Send one request; the answer's body is left to be streamed (``decode_content`` off)."""
        return self.manager_for(url).urlopen(
            method, url, body=body, headers=headers, timeout=timeout, redirect=False, retries=False,
            preload_content=False, decode_content=False, assert_same_host=False,
        )

    def clear(self) -> None:
        """Close every pooled connection."""
        with self._lock:
            managers = {id(manager): manager for manager in [self._direct, *self._managers.values()]}
        for manager in managers.values():
            manager.clear()

