import { Readable } from "node:stream";
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetBucketAclCommand,
  GetBucketLocationCommand,
  GetBucketVersioningCommand,
  GetObjectAclCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
  S3ServiceException,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { HttpResponse, type HttpRequest } from "@smithy/core/protocols";
import { describe, expect, it } from "vitest";
import { renderErrorXml, S3Error } from "../../gateway/s3/errors.js";
import { DELETE_OBJECTS_KEYS_MAX, DELETE_XML_BYTES_MAX } from "../../gateway/s3/limits.js";
import {
  accessControlPolicyXml,
  completeMultipartUploadResultXml,
  copyObjectResultXml,
  copyPartResultXml,
  deleteResultXml,
  initiateMultipartUploadResultXml,
  listAllMyBucketsXml,
  listMultipartUploadsResultXml,
  listObjectsV1Xml,
  listObjectsV2Xml,
  listPartsResultXml,
  locationConstraintXml,
  parseCompleteMultipartUploadXml,
  parseCreateBucketConfigurationXml,
  parseDeleteXml,
  readXmlBody,
  s3UrlEncode,
  versioningConfigurationXml,
} from "../../gateway/s3/xml.js";

const OWNER = { id: "tessera-owner-id", displayName: "tessera" };
const WHEN = new Date(Date.UTC(2024, 4, 24, 13, 14, 15, 123));
const ODD_KEYS = ["plain", "a b/c+d=e", "amp & <lt> \"quote\" 'apos'", "ünï/鍵/😀", "  leading and trailing  ", "0001", "tab\tin", "slash/"];

/** An S3Client whose every request is answered with `body`, capturing what it sent. */
function fakeClient(status: number, body: string, sent: HttpRequest[] = []): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: "http://127.0.0.1:9000",
    forcePathStyle: true,
    credentials: { accessKeyId: "AKID", secretAccessKey: "SECRET" },
    maxAttempts: 1,
    requestHandler: {
      handle: async (request: HttpRequest) => {
        sent.push(request);
        const response = new HttpResponse({ statusCode: status, headers: { "content-type": "application/xml", "x-amz-request-id": "req-1" }, body: Readable.from([Buffer.from(body)]) });
        return { response };
      },
    },
  });
}

function bodyOf(request: HttpRequest | undefined): string {
  const body: unknown = request?.body;
  if (typeof body === "string") return body;
  if (body instanceof Uint8Array) return Buffer.from(body).toString("utf8");
  throw new Error(`unexpected request body ${typeof body}`);
}

describe("XML builders, read back by the real AWS SDK", () => {
  it("ListAllMyBucketsResult", async () => {
    const xml = listAllMyBucketsXml({ owner: OWNER, buckets: [{ name: "alpha", creationDate: WHEN }, { name: "b.e-ta", creationDate: WHEN }] });
    const output = await fakeClient(200, xml).send(new ListBucketsCommand({}));
    expect(output.Buckets?.map((bucket) => bucket.Name)).toEqual(["alpha", "b.e-ta"]);
    expect(output.Buckets?.[0]?.CreationDate?.getTime()).toBe(WHEN.getTime());
    expect(output.Owner).toEqual({ ID: OWNER.id, DisplayName: OWNER.displayName });
  });

  it("ListBucketResult v2 with odd keys, common prefixes and continuation", async () => {
    const xml = listObjectsV2Xml({
      bucket: "bkt", prefix: "", delimiter: "/", maxKeys: 2, encodingType: undefined, isTruncated: true, continuationToken: "c1", nextContinuationToken: "c2&x",
      startAfter: undefined, fetchOwner: true, commonPrefixes: ["dir/", "a b/"],
      contents: ODD_KEYS.map((key, index) => ({ key, lastModified: WHEN, etag: `etag${index}`, size: index * 10, owner: OWNER })),
    });
    const output = await fakeClient(200, xml).send(new ListObjectsV2Command({ Bucket: "bkt" }));
    expect(output.Contents?.map((entry) => entry.Key)).toEqual(ODD_KEYS);
    expect(output.Contents?.[1]).toMatchObject({ ETag: '"etag1"', Size: 10, StorageClass: "STANDARD", Owner: { ID: OWNER.id } });
    expect(output.CommonPrefixes?.map((entry) => entry.Prefix)).toEqual(["dir/", "a b/"]);
    expect(output).toMatchObject({ Name: "bkt", KeyCount: ODD_KEYS.length + 2, IsTruncated: true, ContinuationToken: "c1", NextContinuationToken: "c2&x", MaxKeys: 2, Delimiter: "/" });
  });

  it("ListBucketResult v2 with encoding-type=url encodes keys, prefixes, delimiter and start-after", async () => {
    const xml = listObjectsV2Xml({
      bucket: "bkt", prefix: "p q/", delimiter: "\u0001", maxKeys: 1000, encodingType: "url", isTruncated: false, continuationToken: undefined, nextContinuationToken: undefined,
      startAfter: "s t", fetchOwner: false, commonPrefixes: ["p q/\u0001x\u0001"], contents: [{ key: "p q/ctrl\u0001+%.txt", lastModified: WHEN, etag: "e", size: 1, owner: OWNER }],
    });
    expect(xml).not.toContain("<Owner>");
    const output = await fakeClient(200, xml).send(new ListObjectsV2Command({ Bucket: "bkt", EncodingType: "url" }));
    expect(output).toMatchObject({ EncodingType: "url", Prefix: "p+q/", Delimiter: "%01", StartAfter: "s+t" });
    const decode = (value: string | undefined): string => decodeURIComponent((value ?? "").replace(/\+/g, " "));
    expect(decode(output.Contents?.[0]?.Key)).toBe("p q/ctrl\u0001+%.txt");
    expect(decode(output.CommonPrefixes?.[0]?.Prefix)).toBe("p q/\u0001x\u0001");
    expect(s3UrlEncode("a b/c+d~e*é")).toBe("a+b/c%2Bd~e%2A%C3%A9");
  });

  it("ListBucketResult v1 with marker and NextMarker", async () => {
    const xml = listObjectsV1Xml({
      bucket: "bkt", prefix: "", delimiter: "/", marker: "m", nextMarker: "n k", maxKeys: 1, encodingType: undefined, isTruncated: true,
      contents: [{ key: "k", lastModified: WHEN, etag: '"quoted"', size: 3, owner: OWNER }], commonPrefixes: [],
    });
    const output = await fakeClient(200, xml).send(new ListObjectsCommand({ Bucket: "bkt" }));
    expect(output).toMatchObject({ Marker: "m", NextMarker: "n k", IsTruncated: true, MaxKeys: 1, Contents: [{ Key: "k", ETag: '"quoted"', Size: 3, Owner: { ID: OWNER.id } }] });
  });

  it("LocationConstraint, VersioningConfiguration, AccessControlPolicy", async () => {
    expect((await fakeClient(200, locationConstraintXml("us-east-1")).send(new GetBucketLocationCommand({ Bucket: "b" }))).LocationConstraint).toBeUndefined();
    expect((await fakeClient(200, locationConstraintXml("eu-west-3")).send(new GetBucketLocationCommand({ Bucket: "b" }))).LocationConstraint).toBe("eu-west-3");
    expect((await fakeClient(200, versioningConfigurationXml()).send(new GetBucketVersioningCommand({ Bucket: "b" }))).Status).toBeUndefined();
    expect((await fakeClient(200, versioningConfigurationXml("Enabled")).send(new GetBucketVersioningCommand({ Bucket: "b" }))).Status).toBe("Enabled");
    for (const command of [new GetBucketAclCommand({ Bucket: "b" }), new GetObjectAclCommand({ Bucket: "b", Key: "k" })]) {
      const output = await fakeClient(200, accessControlPolicyXml(OWNER)).send(command as GetBucketAclCommand);
      expect(output.Owner).toEqual({ ID: OWNER.id, DisplayName: OWNER.displayName });
      expect(output.Grants).toEqual([{ Grantee: { ID: OWNER.id, DisplayName: OWNER.displayName, Type: "CanonicalUser" }, Permission: "FULL_CONTROL" }]);
    }
  });

  it("DeleteObjects: the SDK's request parses to the same keys, and the result reads back", async () => {
    const sent: HttpRequest[] = [];
    const result = deleteResultXml({
      quiet: false,
      deleted: [{ key: ODD_KEYS[2] as string }, { key: "v", versionId: "v1", deleteMarker: true, deleteMarkerVersionId: "dm1" }],
      errors: [{ key: "k2", code: "AccessDenied", message: "Access Denied" }],
    });
    const output = await fakeClient(200, result, sent).send(new DeleteObjectsCommand({ Bucket: "b", Delete: { Quiet: true, Objects: [...ODD_KEYS.map((Key) => ({ Key })), { Key: "v", VersionId: "v1" }] } }));
    const parsed = parseDeleteXml(bodyOf(sent[0]));
    expect(parsed).toEqual({ quiet: true, objects: [...ODD_KEYS.map((key) => ({ key, versionId: undefined })), { key: "v", versionId: "v1" }] });
    expect(output.Deleted).toEqual([{ Key: ODD_KEYS[2] }, { Key: "v", VersionId: "v1", DeleteMarker: true, DeleteMarkerVersionId: "dm1" }]);
    expect(output.Errors).toEqual([{ Key: "k2", Code: "AccessDenied", Message: "Access Denied" }]);
    expect(deleteResultXml({ quiet: true, deleted: [{ key: "gone" }], errors: [] })).not.toContain("gone");
  });

  it("multipart: Initiate, Complete (request parsed), ListParts, ListMultipartUploads, CopyPart", async () => {
    const initiate = await fakeClient(200, initiateMultipartUploadResultXml({ bucket: "b", key: "k k", uploadId: "up/1" })).send(new CreateMultipartUploadCommand({ Bucket: "b", Key: "k k" }));
    expect(initiate).toMatchObject({ Bucket: "b", Key: "k k", UploadId: "up/1" });
    const sent: HttpRequest[] = [];
    const complete = await fakeClient(200, completeMultipartUploadResultXml({ location: "http://h/b/k", bucket: "b", key: "k", etag: "abc-2", checksums: { CRC32: "AAAAAA==" } }), sent).send(
      new CompleteMultipartUploadCommand({ Bucket: "b", Key: "k", UploadId: "u", MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"e1"', ChecksumCRC32: "AAAAAA==" }, { PartNumber: 2, ETag: "e2" }] } }),
    );
    expect(complete).toMatchObject({ Location: "http://h/b/k", ETag: '"abc-2"', ChecksumCRC32: "AAAAAA==" });
    expect(parseCompleteMultipartUploadXml(bodyOf(sent[0]))).toEqual([{ partNumber: 1, etag: "e1", checksums: { CRC32: "AAAAAA==" } }, { partNumber: 2, etag: "e2", checksums: {} }]);
    const parts = listPartsResultXml({
      bucket: "b", key: "k", uploadId: "u", owner: OWNER, partNumberMarker: 0, nextPartNumberMarker: 2, maxParts: 2, isTruncated: true,
      parts: [{ partNumber: 1, lastModified: WHEN, etag: "e1", size: 5 }, { partNumber: 2, lastModified: WHEN, etag: "e2", size: 6 }],
    });
    const listed = await fakeClient(200, parts).send(new ListPartsCommand({ Bucket: "b", Key: "k", UploadId: "u" }));
    expect(listed).toMatchObject({ UploadId: "u", NextPartNumberMarker: "2", MaxParts: 2, IsTruncated: true, Initiator: { ID: OWNER.id }, StorageClass: "STANDARD" });
    expect(listed.Parts?.map((part) => [part.PartNumber, part.ETag, part.Size])).toEqual([[1, '"e1"', 5], [2, '"e2"', 6]]);
    const uploads = listMultipartUploadsResultXml({
      bucket: "b", keyMarker: undefined, uploadIdMarker: undefined, nextKeyMarker: "k", nextUploadIdMarker: "u", prefix: "", delimiter: undefined, maxUploads: 1000,
      encodingType: undefined, isTruncated: false, uploads: [{ key: "k", uploadId: "u", initiated: WHEN, owner: OWNER }], commonPrefixes: ["d/"],
    });
    const listedUploads = await fakeClient(200, uploads).send(new ListMultipartUploadsCommand({ Bucket: "b" }));
    expect(listedUploads.Uploads).toEqual([{ Key: "k", UploadId: "u", Initiator: { ID: OWNER.id, DisplayName: OWNER.displayName }, Owner: { ID: OWNER.id, DisplayName: OWNER.displayName }, StorageClass: "STANDARD", Initiated: WHEN }]);
    expect(listedUploads).toMatchObject({ NextKeyMarker: "k", NextUploadIdMarker: "u", MaxUploads: 1000, CommonPrefixes: [{ Prefix: "d/" }] });
    const copyPart = await fakeClient(200, copyPartResultXml({ etag: "cp", lastModified: WHEN })).send(new UploadPartCopyCommand({ Bucket: "b", Key: "k", UploadId: "u", PartNumber: 1, CopySource: "src/key" }));
    expect(copyPart.CopyPartResult).toEqual({ ETag: '"cp"', LastModified: WHEN });
  });

  it("CopyObjectResult", async () => {
    const output = await fakeClient(200, copyObjectResultXml({ etag: "abc", lastModified: WHEN, checksums: { SHA256: "x" } })).send(new CopyObjectCommand({ Bucket: "b", Key: "k", CopySource: "src/key" }));
    expect(output.CopyObjectResult).toEqual({ ETag: '"abc"', LastModified: WHEN, ChecksumSHA256: "x" });
  });

  it("CreateBucketConfiguration: the SDK's request parses", async () => {
    const sent: HttpRequest[] = [];
    await fakeClient(200, "", sent).send(new CreateBucketCommand({ Bucket: "b", CreateBucketConfiguration: { LocationConstraint: "eu-west-3" } }));
    expect(parseCreateBucketConfigurationXml(bodyOf(sent[0]))).toEqual({ locationConstraint: "eu-west-3" });
    expect(parseCreateBucketConfigurationXml("")).toEqual({ locationConstraint: undefined });
    expect(parseCreateBucketConfigurationXml(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>`)).toEqual({ locationConstraint: undefined });
  });

  it("error documents become the SDK's typed exceptions with code, message and status", async () => {
    const xml = renderErrorXml(new S3Error("NoSuchKey", undefined, { extra: { Key: "k" } }), "req-9", "/b/k");
    const failure = await fakeClient(404, xml).send(new GetObjectCommand({ Bucket: "b", Key: "k" })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(S3ServiceException);
    expect(failure).toMatchObject({ name: "NoSuchKey", message: "The specified key does not exist.", $metadata: { httpStatusCode: 404 } });
  });
});

describe("XML parsers reject bad input with MalformedXML", () => {
  const NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"';
  const DEFAULT_MESSAGE = "The XML you provided was not well-formed or did not validate against our published schema";
  const detail = (text: string): string => `${DEFAULT_MESSAGE}: ${text}.`;

  const BAD_DELETES: Array<[string, string, string]> = [
    ["not XML", "this is not xml", DEFAULT_MESSAGE],
    ["unclosed", `<Delete ${NS}><Object><Key>a</Key></Delete>`, DEFAULT_MESSAGE],
    ["empty body", " \n", detail("the body is empty")],
    ["two roots", `<Delete ${NS}><Object><Key>a</Key></Object></Delete><Delete/>`, detail("expected a single <Delete> element")],
    ["wrong root", `<Remove ${NS}><Object><Key>a</Key></Object></Remove>`, detail("expected a single <Delete> element")],
    ["no objects", `<Delete ${NS}><Quiet>true</Quiet></Delete>`, detail("at least one <Object> is required")],
    ["object without key", `<Delete ${NS}><Object><VersionId>v</VersionId></Object></Delete>`, detail("every <Object> needs a <Key>")],
    ["nested key", `<Delete ${NS}><Object><Key><a>x</a></Key></Object></Delete>`, detail("<Key> must hold text")],
    ["bad quiet", `<Delete ${NS}><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>`, detail("<Quiet> must be true or false")],
    ["DTD entity", `<!DOCTYPE d [<!ENTITY x "xxxxxxxx">]><Delete ${NS}><Object><Key>&x;</Key></Object></Delete>`, detail("document type declarations are not allowed")],
    ["unknown entity", `<Delete ${NS}><Object><Key>a&nbsp;b</Key></Object></Delete>`, detail("a bare '&' or an unknown entity")],
    ["bad character reference", `<Delete ${NS}><Object><Key>a&#0;b</Key></Object></Delete>`, detail("an invalid character reference")],
  ];

  it.each(BAD_DELETES)("Delete: %s", (_what, xml, message) => {
    expect(() => parseDeleteXml(xml)).toThrow(new S3Error("MalformedXML", message));
    try {
      parseDeleteXml(xml);
    } catch (error) {
      expect((error as S3Error).code).toBe("MalformedXML");
      expect((error as S3Error).status).toBe(400);
    }
  });

  it("Delete: decodes entities and character references, keeps spaces, normalises line ends", () => {
    const parsed = parseDeleteXml(`<Delete ${NS}><Object><Key> a &amp;&lt;&gt;&quot;&apos;&#x41;&#66;&#x1F600;\r\nz </Key><VersionId> v </VersionId></Object><Quiet> TRUE </Quiet></Delete>`);
    expect(parsed).toEqual({ quiet: true, objects: [{ key: " a &<>\"'AB😀\nz ", versionId: "v" }] });
  });

  it("Delete: at most 1000 keys, and the byte limit", () => {
    const objects = (count: number): string => `<Delete ${NS}>${"<Object><Key>k</Key></Object>".repeat(count)}</Delete>`;
    expect(parseDeleteXml(objects(DELETE_OBJECTS_KEYS_MAX)).objects).toHaveLength(DELETE_OBJECTS_KEYS_MAX);
    expect(() => parseDeleteXml(objects(DELETE_OBJECTS_KEYS_MAX + 1))).toThrow(detail("at most 1000 <Object> elements are allowed"));
    expect(() => parseDeleteXml(Buffer.alloc(DELETE_XML_BYTES_MAX + 1, " "))).toThrow(detail(`the body is larger than ${DELETE_XML_BYTES_MAX} bytes`));
  });

  it("CompleteMultipartUpload: order, numbers and ETags", () => {
    const complete = (parts: string): string => `<CompleteMultipartUpload ${NS}>${parts}</CompleteMultipartUpload>`;
    const part = (number: string, etag = '"e"'): string => `<Part><PartNumber>${number}</PartNumber><ETag>${etag}</ETag></Part>`;
    expect(parseCompleteMultipartUploadXml(complete(part("1") + part("3") + part("10000")))).toHaveLength(3);
    expect(() => parseCompleteMultipartUploadXml(complete(part("2") + part("1")))).toThrow(
      new S3Error("InvalidPartOrder", "The list of parts was not in ascending order. The parts list must be specified in order by part number."),
    );
    expect(() => parseCompleteMultipartUploadXml(complete(part("1") + part("1")))).toThrow("The list of parts was not in ascending order");
    for (const number of ["0", "10001", "x", "1.5", ""]) expect(() => parseCompleteMultipartUploadXml(complete(part(number)))).toThrow(detail("<PartNumber> must be an integer from 1 to 10000"));
    expect(() => parseCompleteMultipartUploadXml(complete(part("1", "")))).toThrow(detail("every <Part> needs an <ETag>"));
    expect(() => parseCompleteMultipartUploadXml(complete(""))).toThrow(detail("at least one <Part> is required"));
    expect(() => parseCompleteMultipartUploadXml("")).toThrow(detail("the body is empty"));
  });

  it("readXmlBody refuses bodies over its limit", async () => {
    expect((await readXmlBody(Readable.from([Buffer.from("ab"), Buffer.from("c")]), 3)).toString()).toBe("abc");
    await expect(readXmlBody(Readable.from([Buffer.from("ab"), Buffer.from("cd")]), 3)).rejects.toThrow(detail("the body is larger than 3 bytes"));
  });
});
