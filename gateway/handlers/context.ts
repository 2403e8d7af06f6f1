/** What every S3 handler gets: the object store and the request it answers. */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import type { ObjectStore } from "../objects/object-store.js";
import type { Route } from "../s3/router.js";
import type { Authenticated, RequestHeaders } from "../s3/sigv4.js";
import type { Owner } from "../s3/xml.js";

export interface HandlerContext {
  readonly store: ObjectStore;
  readonly region: string;
  readonly owner: Owner;
  readonly logger: Logger;
}

export interface RequestContext extends HandlerContext {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly headers: RequestHeaders;
  readonly auth: Authenticated;
  readonly route: Route;
  readonly requestId: string;
}

export async function sendXml(context: RequestContext, xml: string, status = 200): Promise<void> {
  await context.reply.code(status).header("content-type", "application/xml").send(xml);
}

export async function sendEmpty(context: RequestContext, status = 200): Promise<void> {
  await context.reply.code(status).send();
}

/** Reads and discards a request body the operation does not use (keeps the connection usable). */
export async function drainBody(context: RequestContext): Promise<void> {
  for await (const piece of context.request.raw) void piece;
}
