"""Tencent's own cos-python-sdk-v5 against the running emulator (virtual-hosted, IP/Port config)."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("qcloud_cos")
from qcloud_cos import CosConfig, CosS3Client  # noqa: E402
from qcloud_cos.cos_exception import CosServiceError  # noqa: E402

from tests.support.emulator import start_emulator  # noqa: E402

TEMP_ID, TEMP_KEY, TOKEN = "AKIDTMPEXAMPLE0000000000000000", "TMPKEYexample00000000000000000", "TOKENexample"


def client(emulator, secret_id=None, secret_key=None, **extra) -> CosS3Client:
    config = CosConfig(Region=emulator.region, SecretId=secret_id or emulator.secret_id,
                       SecretKey=secret_key or emulator.secret_key, Scheme="http", IP="127.0.0.1",
                       Port=emulator.port, **extra)
    return CosS3Client(config, retry=1)


def body_of(response) -> bytes:
    return response["Body"].get_raw_stream().read()


def test_put_get_range_head_and_metadata(emulator):
    cos, key = client(emulator), "dir/a b+c%~.txt"
    put = cos.put_object(Bucket=emulator.bucket, Key=key, Body=b"0123456789", ContentType="text/plain",
                         Metadata={"x-cos-meta-mode": "0100644"}, EnableMD5=True)
    head = cos.head_object(Bucket=emulator.bucket, Key=key)
    assert put["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert body_of(cos.get_object(Bucket=emulator.bucket, Key=key)) == b"0123456789"
    assert body_of(cos.get_object(Bucket=emulator.bucket, Key=key, Range="bytes=2-5")) == b"2345"
    assert (head["Content-Length"], head["Content-Type"], head["x-cos-meta-mode"]) == ("10", "text/plain", "0100644")
    assert head["ETag"] == put["ETag"] and head["x-cos-object-type"] == "normal"


def test_missing_object_and_unsatisfiable_range(emulator):
    cos = client(emulator)
    cos.put_object(Bucket=emulator.bucket, Key="k", Body=b"abc")
    with pytest.raises(CosServiceError) as missing:
        cos.head_object(Bucket=emulator.bucket, Key="nope")
    with pytest.raises(CosServiceError) as out_of_range:
        cos.get_object(Bucket=emulator.bucket, Key="k", Range="bytes=3-")
    assert missing.value.get_status_code() == 404
    assert (out_of_range.value.get_status_code(), out_of_range.value.get_error_code()) == (416, "InvalidRange")


def test_list_prefix_delimiter_and_paging_past_1000(emulator):
    cos = client(emulator)
    keys = [f"many/k {i:04d}+x" for i in range(1050)] + ["many/sub/one", "many/sub/two", "other"]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: cos.put_object(Bucket=emulator.bucket, Key=k, Body=b"x"), keys))
    seen, prefixes, marker, pages = [], [], "", 0
    while True:
        page = cos.list_objects(Bucket=emulator.bucket, Prefix="many/", Delimiter="/", Marker=marker)
        seen += [item["Key"] for item in page.get("Contents", [])]
        prefixes += [item["Prefix"] for item in page.get("CommonPrefixes", [])]
        pages += 1
        if page["IsTruncated"] == "false":
            break
        marker = page["NextMarker"]
    assert pages == 2
    assert seen == sorted(k for k in keys if k.startswith("many/k"))
    assert prefixes == ["many/sub/"]


def test_copy_and_metadata_replace(emulator):
    cos, bucket = client(emulator), emulator.bucket
    cos.put_object(Bucket=bucket, Key="src 中.txt", Body=b"payload", Metadata={"x-cos-meta-mode": "0100644"})
    source = {"Bucket": bucket, "Key": "src 中.txt", "Region": emulator.region}
    copied = cos.copy_object(Bucket=bucket, Key="dst.txt", CopySource=source)
    cos.copy_object(Bucket=bucket, Key="src 中.txt", CopySource=source, CopyStatus="Replaced",
                    Metadata={"x-cos-meta-mode": "0100600"}, ContentType="text/plain")
    assert copied["ETag"] == f'"{hashlib.md5(b"payload").hexdigest()}"'
    assert body_of(cos.get_object(Bucket=bucket, Key="dst.txt")) == b"payload"
    assert cos.head_object(Bucket=bucket, Key="dst.txt")["x-cos-meta-mode"] == "0100644"
    replaced = cos.head_object(Bucket=bucket, Key="src 中.txt")
    assert (replaced["x-cos-meta-mode"], replaced["Content-Type"]) == ("0100600", "text/plain")


def test_delete_and_delete_objects(emulator):
    cos, bucket = client(emulator), emulator.bucket
    for key in ("a", "b b", "c"):
        cos.put_object(Bucket=bucket, Key=key, Body=b"x")
    cos.delete_object(Bucket=bucket, Key="c")
    result = cos.delete_objects(Bucket=bucket, Delete={"Object": [{"Key": "a"}, {"Key": "b b"}, {"Key": "gone"}],
                                                       "Quiet": "false"})
    assert sorted(item["Key"] for item in result["Deleted"]) == ["a", "b b", "gone"]
    assert "Contents" not in cos.list_objects(Bucket=bucket)


def test_upload_file_multipart_50_mib_round_trip(emulator, tmp_path):
    cos, bucket = client(emulator), emulator.bucket
    source, target = tmp_path / "up.bin", tmp_path / "down.bin"
    data = os.urandom(50 * 1024 * 1024)
    source.write_bytes(data)
    cos.upload_file(Bucket=bucket, Key="big/file.bin", LocalFilePath=str(source), PartSize=5, MAXThread=4)
    head = cos.head_object(Bucket=bucket, Key="big/file.bin")
    cos.download_file(Bucket=bucket, Key="big/file.bin", DestFilePath=str(target))
    assert head["ETag"].strip('"').endswith("-10")
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert emulator.stats().get("xml.UploadPart") == 10


def test_multipart_low_level_and_listings(emulator):
    cos, bucket = client(emulator), emulator.bucket
    upload_id = cos.create_multipart_upload(Bucket=bucket, Key="mp key")["UploadId"]
    first = cos.upload_part(Bucket=bucket, Key="mp key", Body=b"a" * (1024 * 1024), PartNumber=1, UploadId=upload_id)
    second = cos.upload_part(Bucket=bucket, Key="mp key", Body=b"tail", PartNumber=2, UploadId=upload_id)
    uploads = cos.list_multipart_uploads(Bucket=bucket, Prefix="mp")
    parts = cos.list_parts(Bucket=bucket, Key="mp key", UploadId=upload_id)
    assert [u["Key"] for u in uploads["Upload"]] == ["mp key"]
    assert [p["PartNumber"] for p in parts["Part"]] == ["1", "2"]
    cos.complete_multipart_upload(Bucket=bucket, Key="mp key", UploadId=upload_id, MultipartUpload={"Part": [
        {"PartNumber": 1, "ETag": first["ETag"]}, {"PartNumber": 2, "ETag": second["ETag"]}]})
    assert body_of(cos.get_object(Bucket=bucket, Key="mp key")) == b"a" * (1024 * 1024) + b"tail"
    with pytest.raises(CosServiceError) as gone:
        cos.abort_multipart_upload(Bucket=bucket, Key="mp key", UploadId=upload_id)
    assert gone.value.get_error_code() == "NoSuchUpload"


def test_append_object(emulator):
    cos, bucket = client(emulator), emulator.bucket
    first = cos.append_object(Bucket=bucket, Key="log", Position=0, Data=b"hello ")
    cos.append_object(Bucket=bucket, Key="log", Position=int(first["x-cos-next-append-position"]), Data=b"world")
    with pytest.raises(CosServiceError) as wrong:
        cos.append_object(Bucket=bucket, Key="log", Position=3, Data=b"!")
    assert body_of(cos.get_object(Bucket=bucket, Key="log")) == b"hello world"
    assert wrong.value.get_status_code() == 409


def test_temporary_credentials_need_their_token(tmp_path):
    running = start_emulator(tmp_path / "root", "--credential", f"{TEMP_ID}:{TEMP_KEY}:{TOKEN}")
    try:
        with_token = client(running, TEMP_ID, TEMP_KEY, Token=TOKEN)
        with_token.put_object(Bucket=running.bucket, Key="t", Body=b"temp")
        assert body_of(with_token.get_object(Bucket=running.bucket, Key="t")) == b"temp"
        with pytest.raises(CosServiceError) as refused:
            client(running, TEMP_ID, TEMP_KEY).get_object(Bucket=running.bucket, Key="t")
        assert refused.value.get_status_code() == 403
    finally:
        running.stop()


def test_wrong_secret_key_is_signature_does_not_match(emulator):
    cos = client(emulator, secret_key="not-the-key")
    with pytest.raises(CosServiceError) as refused:
        cos.put_object(Bucket=emulator.bucket, Key="k", Body=b"x")
    assert refused.value.get_error_code() in ("SignatureDoesNotMatch", "AccessDenied")
    assert refused.value.get_status_code() == 403
