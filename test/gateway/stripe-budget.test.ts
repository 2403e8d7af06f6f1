/**
 * The gateway's stripe budget (gateway/erasure/stripe-budget.ts): shares are granted first
 * come first served within the capacity; one request bigger than the whole budget goes alone;
 * a nested ask (a copy's decoder, whose encoder already holds a share) is granted at once even
 * with the budget full and others waiting, so a copy never waits on requests waiting on it.
 */
import { describe, expect, it } from "vitest";
import { StripeBudget } from "../../gateway/erasure/stripe-budget.js";

const settled = async (promise: Promise<unknown>): Promise<boolean> => {
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
};

describe("StripeBudget", () => {
  it("grants within capacity, queues the rest in order, and releases once", async () => {
    const budget = new StripeBudget(100);
    const first = await budget.acquire(60);
    const second = budget.acquire(30);
    expect(await settled(second)).toBe(true);
    const third = budget.acquire(20);
    const fourth = budget.acquire(5);
    expect(await settled(third)).toBe(false);
    expect(await settled(fourth)).toBe(false); // first come first served: not ahead of the third
    expect(budget.waiting).toBe(2);
    first();
    first(); // a second release does nothing
    expect(await settled(third)).toBe(true);
    expect(await settled(fourth)).toBe(true);
    expect(budget.usedBytes).toBe(55);
  });

  it("lets one request bigger than the whole budget through alone", async () => {
    const budget = new StripeBudget(100);
    const big = await budget.acquire(500);
    expect(budget.usedBytes).toBe(500);
    const small = budget.acquire(1);
    expect(await settled(small)).toBe(false);
    big();
    expect(await settled(small)).toBe(true);
  });

  it("grants a nested ask at once, over the budget and ahead of waiters", async () => {
    const budget = new StripeBudget(100);
    const encoder = await budget.acquire(100);
    const waiting = budget.acquire(50);
    const decoder = budget.acquire(40, { nested: true });
    expect(await settled(decoder)).toBe(true);
    expect(budget.usedBytes).toBe(140);
    expect(await settled(waiting)).toBe(false);
    (await decoder)();
    encoder();
    expect(await settled(waiting)).toBe(true);
    expect(budget.usedBytes).toBe(50);
  });
});
