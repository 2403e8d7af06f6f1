import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, TesseraError, isTesseraError, requireArgument } from "../../core/errors.js";

describe("error codes", () => {
  it("documents every code in core/README.md, and nothing that is not a code", () => {
    const readme = readFileSync(new URL("../../core/README.md", import.meta.url), "utf8");
    const documented = [...readme.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((match) => match[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it("carries a stable code and details, and names the bad option", () => {
    expect(() => requireArgument(false, "k", "must be at least 1")).toThrow("k: must be at least 1");
    try {
      requireArgument(false, "k", "must be at least 1");
    } catch (error) {
      expect(isTesseraError(error, "ERR_INVALID_ARGUMENT")).toBe(true);
      expect((error as TesseraError).details).toEqual({ option: "k" });
    }
    expect(isTesseraError(new Error("plain"))).toBe(false);
  });
});
