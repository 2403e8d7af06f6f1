/**
 * S3 lists keys in UTF-8 binary order, which is Unicode code point order. JavaScript's `<`
 * compares UTF-16 code units, which differs for characters above U+FFFF (surrogates sort
 * below U+E000..U+FFFF), so every key comparison goes through here, on nodes and gateway.
 */
export function compareKeys(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let index = 0; index < length; index++) {
    const x = a.charCodeAt(index);
    const y = b.charCodeAt(index);
    if (x === y) continue;
    // Only when both are in the surrogate range or both outside does code-unit order agree
    // with code-point order; otherwise the surrogate (a character above U+FFFF) is larger.
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate !== ySurrogate) return xSurrogate ? 1 : -1;
    return x - y;
  }
  return a.length - b.length;
}

/** A key above every key that starts with `prefix` (for skipping a rolled-up prefix). */
export function afterPrefix(prefix: string): string {
  return `${prefix}\u{10ffff}\u{10ffff}`;
}
