"""The connection pools under the transport: which proxy an endpoint goes through, how TLS is
checked, and that urllib3 is asked to follow, repeat and decode nothing (no socket opened)."""

from __future__ import annotations

import certifi
import pytest
import urllib3
from urllib3.util import Timeout

from cosfs.wire.http import ConnectionPools, proxy_for

COS = "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
PROXIES = {"http": "http://proxy.corp:3128", "https": "http://proxy.corp:3128",
           "no": "localhost,127.0.0.1,.internal.corp"}


@pytest.mark.parametrize("url, proxies, expected", [
    (f"{COS}/k", PROXIES, "http://proxy.corp:3128"),
    ("http://127.0.0.1:9000/k", PROXIES, None),
    ("http://cos.internal.corp:8080/k", PROXIES, None),
    (f"{COS}/k", {"http": "http://proxy.corp:3128"}, None),
    (f"{COS}/k", {"all": "socks.corp:1080"}, "http://socks.corp:1080"),
    (f"{COS}/k", {"https": "http://proxy.corp:3128", "no": "*"}, None),
    (f"{COS}/k", {}, None),
], ids=["https proxied", "NO_PROXY address", "NO_PROXY domain suffix", "only HTTP_PROXY set",
        "ALL_PROXY without a scheme", "NO_PROXY=*", "no proxy variables"])
def test_the_proxy_is_chosen_per_endpoint_as_the_environment_says(url, proxies, expected):
    assert proxy_for(url, proxies) == expected


def test_an_endpoint_behind_a_proxy_gets_one_proxy_manager_carrying_the_proxys_credentials():
    pools = ConnectionPools(8, True, {"https": "http://me:p%40ss@proxy.corp:3128", "no": "127.0.0.1"})

    proxied = pools.manager_for(f"{COS}/a")
    direct = pools.manager_for("http://127.0.0.1:9000/b")

    assert isinstance(proxied, urllib3.ProxyManager) and not isinstance(direct, urllib3.ProxyManager)
    assert proxied is pools.manager_for(f"{COS}/other?x=1"), "decided once per endpoint"
    assert proxied.proxy_headers["proxy-authorization"] == urllib3.make_headers(
        proxy_basic_auth="me:p@ss")["proxy-authorization"]


@pytest.mark.parametrize("verify, expected", [(True, {"cert_reqs": "CERT_REQUIRED", "ca_certs": certifi.where()}),
                                              (False, {"cert_reqs": "CERT_NONE"})])
def test_certificates_are_checked_against_certifis_bundle_unless_turned_off(verify, expected):
    pool = ConnectionPools(8, verify, {}).manager_for(COS).connection_from_url(COS)

    assert pool.cert_reqs == expected["cert_reqs"]
    assert pool.ca_certs == expected.get("ca_certs")
    assert (pool.pool.maxsize, pool.block) == (8, False)


def test_urllib3_follows_no_redirect_repeats_nothing_and_leaves_the_body_as_stored(monkeypatch):
    pools = ConnectionPools(8, True, {})
    seen = {}
    monkeypatch.setattr(urllib3.PoolManager, "urlopen", lambda self, method, url, **kw: seen.update(kw))

    pools.urlopen("GET", f"{COS}/k", None, {}, Timeout(connect=1, read=2))

    assert (seen["redirect"], seen["retries"], seen["preload_content"], seen["decode_content"]) == (
        False, False, False, False)
