"""Where a bucket lives: its name and APPID, and the URLs of its XML API, JSON API and download host.

Defaults follow the COS documentation (manual 004, and 003 for the JSON API):

- XML API, virtual-hosted: ``https://<bucket>-<appid>.cos.<region>.myqcloud.com``;
  path-style: ``https://cos.<region>.myqcloud.com/<bucket>-<appid>/``.
- JSON API: ``https://<short-region>.file.myqcloud.com/files/v2/<appid>/<bucket>/``.
- JSON API downloads: ``https://<bucket>-<appid>.cos<short-region>.myqcloud.com/<path>``.

A custom ``endpoint`` URL (private network, accelerate domain, a local cosfs-emulator or
another S3-compatible store) replaces the host: a domain name gets the bucket prepended
(virtual-hosted), an IP address or ``localhost`` is addressed path-style.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urlsplit

from cosfs.wire.errors import ConfigError

#: XML API region -> JSON API short region (manual 003; the v4 SDK's table).
JSON_REGIONS = {
    "ap-shanghai": "sh",
    "ap-guangzhou": "gz",
    "ap-beijing-1": "tj",
    "ap-singapore": "sgp",
}

_BUCKET_RE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]*?)-(?P<appid>[0-9]{5,12})$")
_REGION_RE = re.compile(r"^[a-z]{2,}(-[a-z0-9]+)+$")


@dataclass(frozen=True)
class Bucket:
    """A COS bucket: the short ``name`` and the owner's ``appid`` (``name-appid`` in full)."""

    name: str
    appid: str

    @property
    def full_name(self) -> str:
        return f"{self.name}-{self.appid}"

    @classmethod
    def parse(cls, text: str) -> "Bucket":
        match = _BUCKET_RE.match(text)
        if not match:
            raise ConfigError(
                f"bucket {text!r} is not of the form NAME-APPID (for example "
                "examplebucket-1250000000); the APPID is on the COS console's bucket list"
            )
        return cls(match["name"], match["appid"])


def check_region(region: str) -> str:
    if not _REGION_RE.match(region):
        raise ConfigError(f"region {region!r} is not a COS region such as ap-guangzhou")
    return region


@dataclass(frozen=True)
class Endpoint:
    """A base URL (``scheme://host[:port]``) and the encoded path prefix every path gets."""

    base_url: str
    path_prefix: str = ""

    @property
    def hostname(self) -> str:
        """Host name without port: what the COS signatures sign."""
        return urlsplit(self.base_url).hostname or ""

    @property
    def netloc(self) -> str:
        return urlsplit(self.base_url).netloc


def _split_endpoint(url: str) -> tuple:
    if "://" not in url:
        url = "https://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"endpoint {url!r} is not an http(s) URL such as https://cos.ap-guangzhou.myqcloud.com")
    if parts.path.strip("/") or parts.query:
        raise ConfigError(f"endpoint {url!r} must be scheme://host[:port] without a path")
    return parts.scheme, parts.netloc, parts.hostname


def is_ip_host(hostname: str) -> bool:
    if hostname == "localhost":
        return True
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return False
    return True


def xml_endpoint(
    bucket: Bucket,
    region: str,
    endpoint: Optional[str] = None,
    path_style: Optional[bool] = None,
) -> Endpoint:
    """The XML API endpoint of ``bucket``; ``path_style=None`` picks path-style for IP hosts."""
    if endpoint:
        scheme, netloc, hostname = _split_endpoint(endpoint)
    else:
        scheme, netloc = "https", f"cos.{check_region(region)}.myqcloud.com"
        hostname = netloc
    if path_style is None:
        path_style = is_ip_host(hostname)
    if path_style:
        return Endpoint(f"{scheme}://{netloc}", "/" + quote(bucket.full_name))
    if netloc.startswith(bucket.full_name + "."):
        return Endpoint(f"{scheme}://{netloc}")
    return Endpoint(f"{scheme}://{bucket.full_name}.{netloc}")


def _json_region(region: str) -> str:
    if region in JSON_REGIONS.values():
        return region
    try:
        return JSON_REGIONS[region]
    except KeyError:
        raise ConfigError(
            f"the JSON API serves only the regions {', '.join(sorted(JSON_REGIONS))} "
            f"({', '.join(sorted(JSON_REGIONS.values()))}); region {region!r} needs api=xml "
            "or an explicit endpoint="
        ) from None


def json_endpoint(bucket: Bucket, region: str, endpoint: Optional[str] = None) -> Endpoint:
    """The JSON API base of ``bucket``: paths continue after ``/files/v2/<appid>/<bucket>``."""
    prefix = f"/files/v2/{bucket.appid}/{quote(bucket.name)}"
    if endpoint:
        scheme, netloc, _ = _split_endpoint(endpoint)
        return Endpoint(f"{scheme}://{netloc}", prefix)
    return Endpoint(f"https://{_json_region(region)}.file.myqcloud.com", prefix)


def json_download_endpoint(
    bucket: Bucket,
    region: str,
    download_endpoint: Optional[str] = None,
    endpoint: Optional[str] = None,
) -> Endpoint:
    """Where JSON API objects are read from (ranged GET with a download signature).

    An explicit ``download_endpoint`` wins; otherwise a custom ``endpoint`` serves downloads
    as it serves the API (path-style for IP hosts); otherwise the region's download domain.
    """
    if download_endpoint:
        return xml_endpoint(bucket, region, download_endpoint)
    if endpoint:
        return xml_endpoint(bucket, region, endpoint)
    return Endpoint(f"https://{bucket.full_name}.cos{_json_region(region)}.myqcloud.com")
