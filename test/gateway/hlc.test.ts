import { describe, expect, it } from "vitest";
import { HLC_DRIFT_MAX_MS, HybridClock, compareHlc, decodeVersionId } from "../../gateway/hlc.js";

describe("hybrid logical clock", () => {
  it("issues strictly increasing version ids even when the wall clock stalls or steps back", () => {
    const wall = [1000, 1000, 1000, 999, 998, 1001, 1001];
    let call = 0;
    const clock = new HybridClock(() => wall[Math.min(call++, wall.length - 1)] ?? 0);
    const ids = wall.map(() => clock.nextVersionId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    expect(decodeVersionId(ids[0] ?? "")).toEqual({ physicalMs: 1000, logical: 0 });
    expect(decodeVersionId(ids[4] ?? "")).toEqual({ physicalMs: 1000, logical: 4 });
    expect(decodeVersionId(ids[5] ?? "")).toEqual({ physicalMs: 1001, logical: 0 });
  });

  it("adopts an observed newer timestamp, but not one beyond the drift bound", () => {
    const clock = new HybridClock(() => 5000);
    clock.observe({ physicalMs: 6000, logical: 7 });
    expect(decodeVersionId(clock.nextVersionId())).toEqual({ physicalMs: 6000, logical: 8 });
    clock.observe({ physicalMs: 5000 + HLC_DRIFT_MAX_MS + 1, logical: 0 });
    expect(decodeVersionId(clock.nextVersionId())).toEqual({ physicalMs: 6000, logical: 9 });
  });

  it("orders timestamps by physical time, then logical counter", () => {
    expect(compareHlc({ physicalMs: 1, logical: 9 }, { physicalMs: 2, logical: 0 })).toBeLessThan(0);
    expect(compareHlc({ physicalMs: 2, logical: 1 }, { physicalMs: 2, logical: 0 })).toBeGreaterThan(0);
  });
});
