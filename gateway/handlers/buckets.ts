/**
 * Bucket-level S3 operations: bucket CRUD, the small reads clients make before they upload
 * (location, versioning, ACL), the listings, and the batch delete.
 */
import { S3Error } from "../s3/errors.js";
import { CREATE_BUCKET_XML_BYTES_MAX, DELETE_XML_BYTES_MAX } from "../s3/limits.js";
import { openPayload } from "../s3/payload.js";
import type { EndpointHandlers, EndpointOf } from "../s3/router.js";
import {
  accessControlPolicyXml,
  deleteResultXml,
  listAllMyBucketsXml,
  listObjectsV1Xml,
  listObjectsV2Xml,
  locationConstraintXml,
  parseCreateBucketConfigurationXml,
  parseDeleteXml,
  readXmlBody,
  versioningConfigurationXml,
  type DeleteErrorEntry,
  type ObjectEntry,
} from "../s3/xml.js";
import type { ListObjectsPage } from "../objects/list-objects.js";
import { sendEmpty, sendXml, type RequestContext } from "./context.js";
import { toS3Error } from "../s3/errors.js";

type Handlers = Partial<EndpointHandlers<Promise<void>>>;

/** Keys deleted at once by DeleteObjects: enough to keep nodes busy, few enough to bound memory. */
const DELETE_OBJECTS_CONCURRENCY = 16;

export function bucketHandlers(context: RequestContext): Handlers {
  return {
    ListBuckets: async () => {
      const buckets = await context.store.listBuckets();
      await sendXml(context, listAllMyBucketsXml({ owner: context.owner, buckets: buckets.map((bucket) => ({ name: bucket.name, creationDate: new Date(bucket.created) })) }));
    },
    CreateBucket: async (endpoint) => {
      const body = await readXmlBody(openPayload(context.request.raw, context.auth, context.headers).body, CREATE_BUCKET_XML_BYTES_MAX);
      const { locationConstraint } = parseCreateBucketConfigurationXml(body);
      if (locationConstraint !== undefined && locationConstraint !== context.region) {
        throw new S3Error("InvalidLocationConstraint", `The specified location-constraint is not valid for this gateway (region ${context.region}).`);
      }
      if ((await context.store.createBucket(endpoint.bucket)) === "exists") throw new S3Error("BucketAlreadyOwnedByYou", undefined, { extra: { BucketName: endpoint.bucket } });
      context.reply.header("location", `/${endpoint.bucket}`);
      await sendEmpty(context);
    },
    HeadBucket: async (endpoint) => {
      await context.store.requireBucket(endpoint.bucket);
      context.reply.header("x-amz-bucket-region", context.region);
      await sendEmpty(context);
    },
    DeleteBucket: async (endpoint) => {
      await context.store.requireBucket(endpoint.bucket);
      await context.store.deleteBucket(endpoint.bucket);
      await sendEmpty(context, 204);
    },
    GetBucketLocation: async (endpoint) => {
      await context.store.requireBucket(endpoint.bucket);
      // us-east-1 is reported as an empty LocationConstraint, as S3 does.
      await sendXml(context, locationConstraintXml(context.region === "us-east-1" ? undefined : context.region));
    },
    GetBucketVersioning: async (endpoint) => {
      await context.store.requireBucket(endpoint.bucket);
      await sendXml(context, versioningConfigurationXml());
    },
    GetBucketAcl: async (endpoint) => {
      await context.store.requireBucket(endpoint.bucket);
      await sendXml(context, accessControlPolicyXml(context.owner));
    },
    ListObjectsV2: (endpoint) => listV2(context, endpoint),
    ListObjects: (endpoint) => listV1(context, endpoint),
    DeleteObjects: (endpoint) => deleteObjects(context, endpoint),
  };
}

function splitPage(page: ListObjectsPage, context: RequestContext): { contents: ObjectEntry[]; commonPrefixes: string[] } {
  const contents: ObjectEntry[] = [];
  const commonPrefixes: string[] = [];
  for (const entry of page.entries) {
    if (entry.commonPrefix !== undefined) commonPrefixes.push(entry.commonPrefix);
    else if (entry.record !== undefined) {
      contents.push({ key: entry.key, lastModified: new Date(entry.record.lastModified), etag: entry.record.etag, size: entry.record.size, owner: context.owner });
    }
  }
  return { contents, commonPrefixes };
}

/** Continuation tokens are opaque to clients: the last key returned, base64url-encoded. */
function encodeToken(key: string): string {
  return Buffer.from(key, "utf8").toString("base64url");
}

function decodeToken(token: string): string {
  const key = Buffer.from(token, "base64url").toString("utf8");
  if (key === "" || encodeToken(key) !== token) throw new S3Error("InvalidArgument", "The continuation token provided is incorrect.", { extra: { ArgumentName: "continuation-token" } });
  return key;
}

async function listV2(context: RequestContext, endpoint: EndpointOf<"ListObjectsV2">): Promise<void> {
  await context.store.requireBucket(endpoint.bucket);
  const after = endpoint.continuationToken !== undefined ? decodeToken(endpoint.continuationToken) : endpoint.startAfter;
  const page = await context.store.list({
    bucket: endpoint.bucket,
    prefix: endpoint.prefix,
    ...(endpoint.delimiter === undefined ? {} : { delimiter: endpoint.delimiter }),
    ...(after === undefined ? {} : { startAfter: after }),
    limit: endpoint.maxKeys,
  });
  const { contents, commonPrefixes } = splitPage(page, context);
  await sendXml(
    context,
    listObjectsV2Xml({
      bucket: endpoint.bucket,
      prefix: endpoint.prefix,
      delimiter: endpoint.delimiter,
      maxKeys: endpoint.maxKeys,
      encodingType: endpoint.encodingType,
      isTruncated: page.nextStartAfter !== undefined,
      continuationToken: endpoint.continuationToken,
      nextContinuationToken: page.nextStartAfter === undefined ? undefined : encodeToken(page.nextStartAfter),
      startAfter: endpoint.startAfter,
      fetchOwner: endpoint.fetchOwner,
      contents,
      commonPrefixes,
    }),
  );
}

async function listV1(context: RequestContext, endpoint: EndpointOf<"ListObjects">): Promise<void> {
  await context.store.requireBucket(endpoint.bucket);
  const page = await context.store.list({
    bucket: endpoint.bucket,
    prefix: endpoint.prefix,
    ...(endpoint.delimiter === undefined ? {} : { delimiter: endpoint.delimiter }),
    ...(endpoint.marker === undefined ? {} : { startAfter: endpoint.marker }),
    limit: endpoint.maxKeys,
  });
  const { contents, commonPrefixes } = splitPage(page, context);
  const truncated = page.nextStartAfter !== undefined;
  await sendXml(
    context,
    listObjectsV1Xml({
      bucket: endpoint.bucket,
      prefix: endpoint.prefix,
      delimiter: endpoint.delimiter,
      marker: endpoint.marker,
      nextMarker: truncated && endpoint.delimiter !== undefined ? page.nextStartAfter : undefined,
      maxKeys: endpoint.maxKeys,
      encodingType: endpoint.encodingType,
      isTruncated: truncated,
      contents,
      commonPrefixes,
    }),
  );
}

async function deleteObjects(context: RequestContext, endpoint: EndpointOf<"DeleteObjects">): Promise<void> {
  await context.store.requireBucket(endpoint.bucket);
  const batch = parseDeleteXml(await readXmlBody(openPayload(context.request.raw, context.auth, context.headers).body, DELETE_XML_BYTES_MAX));
  const deleted: { key: string }[] = [];
  const errors: DeleteErrorEntry[] = [];
  const queue = [...batch.objects];
  const worker = async (): Promise<void> => {
    for (let object = queue.shift(); object !== undefined; object = queue.shift()) {
      try {
        await context.store.delete(endpoint.bucket, object.key);
        deleted.push({ key: object.key });
      } catch (error) {
        const s3 = toS3Error(error);
        errors.push({ key: object.key, code: s3.code, message: s3.message });
      }
    }
  };
  await Promise.all(Array.from({ length: DELETE_OBJECTS_CONCURRENCY }, worker));
  const order = new Map(batch.objects.map((object, index) => [object.key, index]));
  const byRequest = (a: { key: string }, b: { key: string }): number => (order.get(a.key) ?? 0) - (order.get(b.key) ?? 0);
  await sendXml(context, deleteResultXml({ quiet: batch.quiet, deleted: deleted.sort(byRequest), errors: errors.sort(byRequest) }));
}
