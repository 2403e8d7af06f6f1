/**
 * The client side of record batching: an operation leaves at once while fewer than
 * BATCHES_IN_FLIGHT_MAX batches are out (one); the rest queue and leave together, within the
 * size limits; each caller gets its own result or error.
 */
import { describe, expect, it } from "vitest";
import { BATCHES_IN_FLIGHT_MAX, BATCH_BODY_BYTES_MAX, BATCH_ITEM_BYTES_MAX, BATCH_OPS_MAX, BATCH_QUEUE_OPS_MAX, RecordBatcher, type BatchResultWire } from "../../core/record-batch.js";

interface Sent {
  readonly ops: string[];
  answer(results?: BatchResultWire[]): void;
  fail(error: Error): void;
}

function harness(): { batcher: RecordBatcher; sent: Sent[] } {
  const sent: Sent[] = [];
  const batcher = new RecordBatcher(
    (body, count) =>
      new Promise((resolve, reject) => {
        const ops = (JSON.parse(body) as { ops: unknown[] }).ops.map((op) => JSON.stringify(op));
        expect(ops).toHaveLength(count);
        sent.push({ ops, answer: (results) => resolve(results ?? ops.map((op) => ({ ok: op }))), fail: reject });
      }),
  );
  return { batcher, sent };
}

const op = (index: number, pad = 0): string => JSON.stringify({ op: "getRecords", diskId: "d", bucket: "b", key: `k${index}`, pad: "x".repeat(pad) });
const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("RecordBatcher", () => {
  it("sends alone while few batches are out, then queues and sends the rest together", async () => {
    const { batcher, sent } = harness();
    const results = Array.from({ length: 10 }, (_, index) => batcher.submit(op(index)));
    expect(sent.map((batch) => batch.ops.length)).toEqual(Array(BATCHES_IN_FLIGHT_MAX).fill(1));
    sent[0]?.answer();
    await flush();
    expect(sent.map((batch) => batch.ops.length)).toEqual([...Array(BATCHES_IN_FLIGHT_MAX).fill(1), 10 - BATCHES_IN_FLIGHT_MAX]);
    for (const batch of sent.slice(1)) batch.answer();
    expect(await Promise.all(results)).toEqual(Array.from({ length: 10 }, (_, index) => ({ ok: op(index) })));
  });

  it("keeps a batch within BATCH_OPS_MAX operations and BATCH_BODY_BYTES_MAX bytes", async () => {
    const { batcher, sent } = harness();
    const blockers = Array.from({ length: BATCHES_IN_FLIGHT_MAX }, (_, index) => batcher.submit(op(index)));
    const many = Array.from({ length: BATCH_OPS_MAX + 5 }, (_, index) => batcher.submit(op(100 + index)));
    const bigPad = Math.floor(BATCH_ITEM_BYTES_MAX * 0.9);
    const big = Array.from({ length: Math.ceil(BATCH_BODY_BYTES_MAX / bigPad) + 1 }, (_, index) => batcher.submit(op(900 + index, bigPad)));
    for (let round = 0; round < 20 && sent.some((batch) => batch.ops.length > 0); round++) {
      for (const batch of sent.splice(0)) {
        expect(batch.ops.length).toBeLessThanOrEqual(BATCH_OPS_MAX);
        expect(batch.ops.reduce((sum, each) => sum + each.length + 1, 0) <= BATCH_BODY_BYTES_MAX || batch.ops.length === 1).toBe(true);
        batch.answer();
      }
      await flush();
    }
    expect((await Promise.all([...blockers, ...many, ...big])).length).toBe(BATCHES_IN_FLIGHT_MAX + BATCH_OPS_MAX + 5 + big.length);
  });

  it("gives each caller its own error, and the exchange's failure to every caller of that batch", async () => {
    const { batcher, sent } = harness();
    // Batches that go alone at once (one per slot), then two operations that queue behind them.
    const alone = (base: number): Promise<BatchResultWire>[] => Array.from({ length: BATCHES_IN_FLIGHT_MAX }, (_, index) => batcher.submit(op(base + index)));
    const first = alone(0);
    const pair = [batcher.submit(op(10)), batcher.submit(op(11))];
    expect(sent).toHaveLength(BATCHES_IN_FLIGHT_MAX);
    sent[0]?.answer([{ error: { code: "ERR_NOT_FOUND", message: "no such disk", details: {} } }]);
    expect(await first[0]).toEqual({ error: { code: "ERR_NOT_FOUND", message: "no such disk", details: {} } });
    for (const batch of sent.slice(1)) batch.answer();
    await flush();
    expect(sent.at(-1)?.ops).toEqual([op(10), op(11)]);
    sent.at(-1)?.fail(new Error("connection reset"));
    for (const waiting of pair) await expect(waiting).rejects.toThrow("connection reset");
    await flush();

    const before = sent.length;
    const second = alone(20);
    const queued = [batcher.submit(op(30)), batcher.submit(op(31))];
    for (const batch of sent.slice(before)) batch.answer();
    await Promise.all(second);
    await flush();
    expect(sent.at(-1)?.ops).toEqual([op(30), op(31)]);
    sent.at(-1)?.answer([{ ok: 3 }]); // one result for two operations: the second is refused
    expect(await queued[0]).toEqual({ ok: 3 });
    await expect(queued[1]).rejects.toThrow("answered 1 of 2");
  });

  it("answers unavailable at once when BATCH_QUEUE_OPS_MAX operations already wait (a hung node)", async () => {
    const { batcher, sent } = harness();
    const waiting = Promise.allSettled(Array.from({ length: BATCHES_IN_FLIGHT_MAX + BATCH_QUEUE_OPS_MAX }, (_, index) => batcher.submit(op(index))));
    await expect(batcher.submit(op(-1))).rejects.toMatchObject({ code: "ERR_NODE_UNAVAILABLE" });
    for (const batch of sent.splice(0)) batch.fail(new Error("headers timeout"));
    await flush();
    for (let round = 0; round < 200 && sent.length > 0; round++) {
      for (const batch of sent.splice(0)) batch.answer();
      await flush();
    }
    const outcomes = await waiting;
    expect(outcomes.filter((outcome) => outcome.status === "rejected")).toHaveLength(BATCHES_IN_FLIGHT_MAX);
    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(BATCH_QUEUE_OPS_MAX);
    // Drained: the node is asked again.
    const again = batcher.submit(op(-2));
    sent.splice(0).forEach((batch) => batch.answer());
    expect(await again).toEqual({ ok: op(-2) });
  });

  it("refuses an operation over BATCH_ITEM_BYTES_MAX (callers send those alone)", () => {
    const { batcher } = harness();
    expect(() => batcher.submit(op(1, BATCH_ITEM_BYTES_MAX))).toThrow(/at most/);
  });
});
