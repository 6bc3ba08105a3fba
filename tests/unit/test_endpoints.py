"""Bucket names and the URLs of both APIs."""

from __future__ import annotations

import pytest

from cosfs.store.endpoints import Bucket, json_download_endpoint, json_endpoint, xml_endpoint
from cosfs.wire.errors import ConfigError

BUCKET = Bucket.parse("examplebucket-1250000000")


def test_bucket_name_and_appid():
    assert (BUCKET.name, BUCKET.appid, BUCKET.full_name) == ("examplebucket", "1250000000", "examplebucket-1250000000")


@pytest.mark.parametrize("text", ["examplebucket", "Example-1250000000", "bucket-12", "-1250000000"])
def test_bad_bucket_names_are_refused(text):
    with pytest.raises(ConfigError) as raised:
        Bucket.parse(text)
    assert "NAME-APPID" in str(raised.value)


def test_xml_virtual_hosted_default():
    endpoint = xml_endpoint(BUCKET, "ap-guangzhou")
    assert endpoint.base_url == "https://examplebucket-1250000000.cos.ap-guangzhou.myqcloud.com"
    assert endpoint.path_prefix == "" and endpoint.hostname.startswith("examplebucket-1250000000.")


def test_xml_path_style_and_custom_endpoints():
    assert xml_endpoint(BUCKET, "ap-guangzhou", path_style=True).base_url == "https://cos.ap-guangzhou.myqcloud.com"
    local = xml_endpoint(BUCKET, "x", "http://127.0.0.1:9000")
    assert (local.base_url, local.path_prefix, local.hostname) == (
        "http://127.0.0.1:9000", "/examplebucket-1250000000", "127.0.0.1")
    accelerate = xml_endpoint(BUCKET, "x", "https://cos.accelerate.myqcloud.com")
    assert accelerate.base_url == "https://examplebucket-1250000000.cos.accelerate.myqcloud.com"


def test_json_endpoints():
    assert json_endpoint(BUCKET, "ap-shanghai").base_url == "https://sh.file.myqcloud.com"
    assert json_endpoint(BUCKET, "sh").path_prefix == "/files/v2/1250000000/examplebucket"
    assert json_download_endpoint(BUCKET, "ap-guangzhou").base_url == "https://examplebucket-1250000000.cosgz.myqcloud.com"
    local = json_download_endpoint(BUCKET, "x", endpoint="http://127.0.0.1:9000")
    assert local.path_prefix == "/examplebucket-1250000000"


@pytest.mark.parametrize("bad", ["ftp://x", "http://host/path", "http://"])
def test_bad_endpoint_urls_are_refused(bad):
    with pytest.raises(ConfigError):
        xml_endpoint(BUCKET, "ap-guangzhou", bad)


def test_json_api_refuses_a_region_it_does_not_serve():
    with pytest.raises(ConfigError) as raised:
        json_endpoint(BUCKET, "eu-frankfurt")
    assert "api=xml" in str(raised.value)
