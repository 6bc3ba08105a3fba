"""boto3 (SigV4, path-style) against the running emulator, as COS's "use the AWS S3 SDK" guide does."""

from __future__ import annotations

import hashlib
import io

import pytest

boto3 = pytest.importorskip("boto3")
from boto3.s3.transfer import TransferConfig  # noqa: E402
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

MIB = 1024 * 1024


def s3(emulator, secret_key=None):
    return boto3.client(
        "s3", endpoint_url=emulator.url, region_name=emulator.region,
        aws_access_key_id=emulator.secret_id, aws_secret_access_key=secret_key or emulator.secret_key,
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 1}),
    )


def test_put_get_head_with_metadata(emulator):
    client, bucket = s3(emulator), emulator.bucket
    put = client.put_object(Bucket=bucket, Key="dir/a b+c.txt", Body=b"0123456789", ContentType="text/plain",
                            Metadata={"mode": "0100644"})
    got = client.get_object(Bucket=bucket, Key="dir/a b+c.txt")
    ranged = client.get_object(Bucket=bucket, Key="dir/a b+c.txt", Range="bytes=-4")
    head = client.head_object(Bucket=bucket, Key="dir/a b+c.txt")
    assert put["ETag"] == f'"{hashlib.md5(b"0123456789").hexdigest()}"'
    assert got["Body"].read() == b"0123456789" and got["Metadata"] == {"mode": "0100644"}
    assert (ranged["Body"].read(), ranged["ContentRange"]) == (b"6789", "bytes 6-9/10")
    assert (head["ContentLength"], head["ContentType"], head["Metadata"]) == (10, "text/plain", {"mode": "0100644"})


def test_conditional_get_and_missing_key(emulator):
    client, bucket = s3(emulator), emulator.bucket
    etag = client.put_object(Bucket=bucket, Key="k", Body=b"x")["ETag"]
    with pytest.raises(ClientError) as not_modified:
        client.get_object(Bucket=bucket, Key="k", IfNoneMatch=etag)
    with pytest.raises(ClientError) as failed:
        client.get_object(Bucket=bucket, Key="k", IfMatch='"0000"')
    with pytest.raises(ClientError) as missing:
        client.get_object(Bucket=bucket, Key="nope")
    assert not_modified.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    assert failed.value.response["Error"]["Code"] == "PreconditionFailed"
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"


def test_list_objects_v1_and_v2_paging_and_delimiter(emulator):
    client, bucket = s3(emulator), emulator.bucket
    keys = [f"p/{name}" for name in ("a b", "a+b", "c", "中", "d%e")] + ["p/sub/x", "q"]
    for key in keys:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    v1 = [item["Key"] for page in client.get_paginator("list_objects").paginate(
        Bucket=bucket, Prefix="p/", Delimiter="/", PaginationConfig={"PageSize": 2}) for item in page.get("Contents", [])]
    v2_pages = list(client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="p/", Delimiter="/", PaginationConfig={"PageSize": 2}))
    v2 = [item["Key"] for page in v2_pages for item in page.get("Contents", [])]
    prefixes = [p["Prefix"] for page in v2_pages for p in page.get("CommonPrefixes", [])]
    expected = sorted((k for k in keys if k.startswith("p/") and k.count("/") == 1), key=lambda k: k.encode())
    assert v1 == expected and v2 == expected and prefixes == ["p/sub/"]
    assert sum(page["KeyCount"] for page in v2_pages) == len(expected) + 1
    after = client.list_objects_v2(Bucket=bucket, StartAfter="p/c")
    assert [item["Key"] for item in after["Contents"]][0] == "p/d%e"


def test_multipart_create_upload_complete(emulator):
    client, bucket = s3(emulator), emulator.bucket
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp", ContentType="video/mp4",
                                               Metadata={"mode": "0100600"})["UploadId"]
    parts = []
    for number, data in ((1, b"a" * MIB), (2, b"tail")):
        etag = client.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=number, Body=data)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    listed = client.list_parts(Bucket=bucket, Key="mp", UploadId=upload_id)
    done = client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                            MultipartUpload={"Parts": parts})
    got = client.get_object(Bucket=bucket, Key="mp")
    assert [p["PartNumber"] for p in listed["Parts"]] == [1, 2]
    assert done["ETag"].endswith('-2"')
    assert got["Body"].read() == b"a" * MIB + b"tail"
    assert (got["ContentType"], got["Metadata"]) == ("video/mp4", {"mode": "0100600"})


def test_complete_with_wrong_etag_is_invalid_part(emulator):
    client, bucket = s3(emulator), emulator.bucket
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="mp")["UploadId"]
    client.upload_part(Bucket=bucket, Key="mp", UploadId=upload_id, PartNumber=1, Body=b"x")
    with pytest.raises(ClientError) as refused:
        client.complete_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id,
                                         MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00"'}]})
    assert refused.value.response["Error"]["Code"] == "InvalidPart"
    client.abort_multipart_upload(Bucket=bucket, Key="mp", UploadId=upload_id)
    assert "Uploads" not in client.list_multipart_uploads(Bucket=bucket)


def test_managed_transfer_uses_multipart_and_round_trips(emulator):
    client, bucket = s3(emulator), emulator.bucket
    data = bytes(range(256)) * (48 * 1024)  # 12 MiB: parts of 5, 5 and 2 (s3transfer's minimum part is 5 MiB)
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB, max_concurrency=4)
    client.upload_fileobj(io.BytesIO(data), bucket, "managed", Config=config)
    out = io.BytesIO()
    client.download_fileobj(bucket, "managed", out, Config=config)
    assert out.getvalue() == data
    assert emulator.stats().get("xml.UploadPart") == 3


def test_copy_with_replace_and_upload_part_copy(emulator):
    client, bucket = s3(emulator), emulator.bucket
    client.put_object(Bucket=bucket, Key="src dir/中 +.txt", Body=b"payload", Metadata={"a": "1"})
    source = {"Bucket": bucket, "Key": "src dir/中 +.txt"}
    client.copy_object(Bucket=bucket, Key="copy", CopySource=source)
    client.copy_object(Bucket=bucket, Key="replaced", CopySource=source, MetadataDirective="REPLACE",
                       Metadata={"b": "2"}, ContentType="text/plain")
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="pc")["UploadId"]
    part = client.upload_part_copy(Bucket=bucket, Key="pc", UploadId=upload_id, PartNumber=1,
                                   CopySource=source, CopySourceRange="bytes=0-2")
    client.complete_multipart_upload(Bucket=bucket, Key="pc", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert client.head_object(Bucket=bucket, Key="copy")["Metadata"] == {"a": "1"}
    replaced = client.head_object(Bucket=bucket, Key="replaced")
    assert (replaced["Metadata"], replaced["ContentType"]) == ({"b": "2"}, "text/plain")
    assert client.get_object(Bucket=bucket, Key="pc")["Body"].read() == b"pay"


def test_upload_part_copy_honours_copy_source_if_match(emulator):
    """cosfs pins every part it copies from the object a sparse write changes to that object's
    ETag (``x-cos-copy-source-If-Match``): a source changed meanwhile must fail the part with
    412, never copy bytes of another version."""
    client, bucket = s3(emulator), emulator.bucket
    etag = client.put_object(Bucket=bucket, Key="base", Body=b"0123456789")["ETag"]
    source = {"Bucket": bucket, "Key": "base"}
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="new")["UploadId"]
    part = client.upload_part_copy(Bucket=bucket, Key="new", UploadId=upload_id, PartNumber=1, CopySource=source,
                                   CopySourceRange="bytes=2-5", CopySourceIfMatch=etag)
    client.put_object(Bucket=bucket, Key="base", Body=b"another version")
    with pytest.raises(ClientError) as refused:
        client.upload_part_copy(Bucket=bucket, Key="new", UploadId=upload_id, PartNumber=2, CopySource=source,
                                CopySourceRange="bytes=0-3", CopySourceIfMatch=etag)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    listed = client.list_parts(Bucket=bucket, Key="new", UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in listed] == [1], "the refused part was not stored"
    client.complete_multipart_upload(Bucket=bucket, Key="new", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": part["CopyPartResult"]["ETag"]}]})
    assert client.get_object(Bucket=bucket, Key="new")["Body"].read() == b"2345"


def test_delete_object_and_delete_objects(emulator):
    client, bucket = s3(emulator), emulator.bucket
    for key in ("a", "b", "c"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    client.delete_object(Bucket=bucket, Key="c")
    result = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}, {"Key": "x"}]})
    assert sorted(item["Key"] for item in result["Deleted"]) == ["a", "b", "x"]
    assert client.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_wrong_secret_key_is_refused(emulator):
    with pytest.raises(ClientError) as refused:
        s3(emulator, secret_key="wrong").put_object(Bucket=emulator.bucket, Key="k", Body=b"x")
    assert refused.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied")
