/**
 * A real cluster (test/cluster-harness.ts) and an AWS SDK client for it, started before a test
 * file's tests and stopped after them: the set-up the real-process memory tests share.
 */
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll } from "vitest";
import { startCluster, type ClusterOptions, type TestCluster } from "../cluster-harness.js";

/** Starting six nodes and a gateway on a busy 2-core machine can take most of a minute. */
const CLUSTER_START_TIMEOUT_MS = 120_000;

export interface ClusterWithS3 {
  readonly cluster: TestCluster;
  readonly s3: S3Client;
}

/** Registers the hooks; read `cluster` and `s3` inside tests (they exist once beforeAll ran). */
export function useClusterWithS3(options: ClusterOptions = { nodes: 6, k: 4, m: 2 }): ClusterWithS3 {
  let cluster: TestCluster | undefined;
  let s3: S3Client | undefined;
  beforeAll(async () => {
    cluster = await startCluster(options);
    s3 = new S3Client({ region: cluster.region, endpoint: cluster.endpoint, forcePathStyle: true, credentials: cluster.credentials, maxAttempts: 1 });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    s3?.destroy();
    await cluster?.stop();
  });
  return {
    get cluster(): TestCluster {
      if (cluster === undefined) throw new Error("the cluster starts in beforeAll");
      return cluster;
    },
    get s3(): S3Client {
      if (s3 === undefined) throw new Error("the S3 client is made in beforeAll");
      return s3;
    },
  };
}
