"""boto3 against a Tessera cluster, as a Python user would drive it (run by
test/multipart-clients.test.ts). Prints one JSON object of what it saw; the test checks it.

usage: python3 boto3-client.py ENDPOINT REGION ACCESS_KEY SECRET_KEY BUCKET LARGE_FILE WORK_DIR
"""
import hashlib
import json
import os
import sys
import urllib.error
import urllib.request

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, region, access_key, secret_key, bucket, large_file, work = sys.argv[1:8]
# Multipart above 8 MiB in 8 MiB parts (boto3's defaults), two parts in flight.
TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024, max_concurrency=2)
# One attempt: a retried request would hide an error the test should see.
RETRIES = {"max_attempts": 1, "mode": "standard"}


def client(signature_version):
    config = Config(signature_version=signature_version, s3={"addressing_style": "path"}, retries=RETRIES)
    return boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key, aws_secret_access_key=secret_key, config=config)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for piece in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(piece)
    return digest.hexdigest()


def fetch(url):
    """Status, body and S3 error code of a plain GET (no SDK): what a browser or curl would get."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.read(), None
    except urllib.error.HTTPError as error:
        body = error.read().decode("utf-8", "replace")
        code = body.split("<Code>")[1].split("</Code>")[0] if "<Code>" in body else None
        return error.code, b"", code


s3 = client("s3v4")
seen = {}
s3.create_bucket(Bucket=bucket)

small = hashlib.sha256(b"tessera-boto3").digest() * 100
put = s3.put_object(Bucket=bucket, Key="small.bin", Body=small, Metadata={"colour": "blue"}, ContentType="text/x-test")
head = s3.head_object(Bucket=bucket, Key="small.bin")
seen["small"] = {
    "etag": put["ETag"],
    "md5": '"' + hashlib.md5(small).hexdigest() + '"',
    "length": head["ContentLength"],
    "contentType": head["ContentType"],
    "metadata": head["Metadata"],
}
ranged = s3.get_object(Bucket=bucket, Key="small.bin", Range="bytes=100-199")
seen["range"] = {"contentRange": ranged["ContentRange"], "equal": ranged["Body"].read() == small[100:200]}

s3.upload_file(large_file, bucket, "dir/large.bin", Config=TRANSFER)
downloaded = os.path.join(work, "boto3-large.out")
s3.download_file(bucket, "dir/large.bin", downloaded, Config=TRANSFER)
large_head = s3.head_object(Bucket=bucket, Key="dir/large.bin")
seen["large"] = {"sha256": sha256_file(downloaded), "etag": large_head["ETag"], "length": large_head["ContentLength"]}

for index in range(5):
    s3.put_object(Bucket=bucket, Key=f"dir/sub{index}/file", Body=b"x" * index)
pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, PaginationConfig={"PageSize": 2}))
seen["listing"] = {"pages": len(pages), "keys": [item["Key"] for page in pages for item in page.get("Contents", [])]}
grouped = s3.list_objects_v2(Bucket=bucket, Prefix="dir/", Delimiter="/")
seen["grouped"] = {"prefixes": [entry["Prefix"] for entry in grouped.get("CommonPrefixes", [])], "keys": [item["Key"] for item in grouped.get("Contents", [])]}

status, body, _ = fetch(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "small.bin"}, ExpiresIn=300))
seen["presignedV4"] = {"status": status, "equal": body == small}
# Signature Version 2: what generate_presigned_url makes for an endpoint of its own unless
# told signature_version="s3v4"; with a response override, which the signature covers.
v2_url = client("s3").generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "small.bin", "ResponseContentType": "application/x-test"}, ExpiresIn=300)
status, body, code = fetch(v2_url)
seen["presignedV2"] = {"status": status, "equal": body == small, "code": code, "signature": "Signature=" in v2_url and "X-Amz-Signature" not in v2_url}
status, _, code = fetch(v2_url.replace("application%2Fx-test", "text%2Fhtml"))
seen["presignedV2Altered"] = {"status": status, "code": code}

# If-None-Match as a header: boto3 took it as a parameter only from 1.35 (Debian 12 has 1.26).
conditional = client("s3v4")
conditional.meta.events.register("before-sign.s3.PutObject", lambda request, **_: request.headers.__setitem__("If-None-Match", "*"))
try:
    conditional.put_object(Bucket=bucket, Key="small.bin", Body=b"other")
    seen["ifNoneMatch"] = "accepted"
except ClientError as error:
    seen["ifNoneMatch"] = error.response["Error"]["Code"]

deleted = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in seen["listing"]["keys"]] + [{"Key": "never-there"}]})
seen["deleteObjects"] = {"deleted": sorted(entry["Key"] for entry in deleted.get("Deleted", [])), "errors": deleted.get("Errors", [])}
try:
    s3.head_object(Bucket=bucket, Key="dir/large.bin")
    seen["afterDelete"] = "found"
except ClientError as error:
    seen["afterDelete"] = error.response["Error"]["Code"]
s3.delete_bucket(Bucket=bucket)
seen["bucketGone"] = bucket not in [entry["Name"] for entry in s3.list_buckets()["Buckets"]]

print(json.dumps(seen))
