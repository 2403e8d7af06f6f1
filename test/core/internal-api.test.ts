/**
 * Wire forms of the internal API (core/internal-api.ts) that no other test reaches directly:
 * inline record bytes travel as strict base64.
 */
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../core/errors.js";
import { recordFromWire, recordToWire, recordWireJson } from "../../core/internal-api.js";
import { putRecordOp } from "../../core/record-batch.js";
import type { ObjectRecord } from "../../core/storage-api.js";
import { Prng } from "../prng.js";
import { contractRecord } from "../storage-contract.js";

const prng = new Prng(0x1a7e);

describe("records on the wire", () => {
  it("round-trips inline bytes of every length through base64", () => {
    for (const length of [0, 1, 2, 3, 4, 5, 1000, 16 * 1024]) {
      const record = { ...contractRecord(prng, { bucket: "b", key: `k${length}` }), inline: prng.bytes(length) };
      const wire = JSON.parse(JSON.stringify(recordToWire(record))) as unknown;
      expect(recordFromWire(wire).inline?.equals(record.inline)).toBe(true);
    }
  });

  it("refuses inline text that is not canonical padded base64", () => {
    const wire = recordToWire({ ...contractRecord(prng, { bucket: "b", key: "k" }), inline: Buffer.from("hello world") });
    for (const bad of ["aGVsbG8gd29ybGQ", "aGVsbG8gd29ybGQ=\n", "aGVs bG8gd29ybGQ=", "aGVsbG8*d29ybGQ=", "aGVsbG8gd29ybGR=", "aGVsbG8gd29ybGQ==", "aGVsbG8-d29ybGQ="]) {
      let error: unknown;
      try {
        recordFromWire({ ...wire, inline: bad });
      } catch (caught) {
        error = caught;
      }
      expect(isTesseraError(error, "ERR_INVALID_ARGUMENT"), bad).toBe(true);
    }
  });

  it("serializes a record as JSON.stringify of its wire form, character for character, with the payload spliced in", () => {
    for (let round = 0; round < 50; round++) {
      const base = contractRecord(prng, { bucket: "b", key: `k${round}\u00e9"\\` });
      const record: ObjectRecord = round % 3 === 0 ? base : { ...base, inline: prng.bytes(prng.int(0, 5000)) };
      const expected = JSON.stringify(recordToWire(record));
      expect(recordWireJson(record)).toBe(expected);
      expect(putRecordOp("d-0", recordWireJson(record))).toBe(JSON.stringify({ op: "putRecord", diskId: "d-0", record: recordToWire(record) }));
    }
    // The splice's one edge: nothing but the payload.
    expect(recordWireJson({ inline: Buffer.from("hi") } as unknown as ObjectRecord)).toBe('{"inline":"aGk="}');
  });
});
