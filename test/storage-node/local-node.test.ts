import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { LocalNode } from "../../storage-node/local-node.js";
import { storageContract } from "../storage-contract.js";

storageContract("LocalNode", async () => {
  const root = await mkdtemp(path.join(os.tmpdir(), "tessera-test-contract-"));
  const diskIds = ["d1", "d2"];
  const node = await LocalNode.open({ nodeId: "n1", disks: diskIds.map((id) => ({ id, path: path.join(root, id) })) });
  return {
    node,
    diskIds,
    cleanup: async () => {
      await node.close();
      await rm(root, { recursive: true, force: true });
    },
  };
});
