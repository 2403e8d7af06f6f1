/**
 * The role settings every `tessera` process reads the same way (core/role-process.ts): the V8
 * heap growing percent from TESSERA_HEAP_GROWING_PERCENT, or the role's default. Whether V8
 * takes it is checked on a real node process: test/storage-node/heap-growing.test.ts.
 */
import { describe, expect, it } from "vitest";
import { HEAP_GROWING_PERCENT_MAX, heapGrowingPercent } from "../../core/role-process.js";
import { UsageError } from "../../core/settings.js";

describe("heapGrowingPercent", () => {
  it("is the role's default when the variable is unset or empty", () => {
    expect(heapGrowingPercent({}, 300)).toBe(300);
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: "" }, 100)).toBe(100);
  });

  it("takes a whole number of percent up to the bound, 0 meaning V8's own rule", () => {
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: "0" }, 300)).toBe(0);
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: "150" }, 300)).toBe(150);
    expect(heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: String(HEAP_GROWING_PERCENT_MAX) }, 300)).toBe(HEAP_GROWING_PERCENT_MAX);
  });

  it.each(["-1", "1.5", "1e2", " 100", "100%", "abc", String(HEAP_GROWING_PERCENT_MAX + 1), "99999"])("refuses %j with a message naming the variable", (text) => {
    expect(() => heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: text }, 300)).toThrow(UsageError);
    expect(() => heapGrowingPercent({ TESSERA_HEAP_GROWING_PERCENT: text }, 300)).toThrow(`TESSERA_HEAP_GROWING_PERCENT: '${text}' is not a whole number of percent in 0..${HEAP_GROWING_PERCENT_MAX}`);
  });
});
