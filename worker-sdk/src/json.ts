// Payloads, results and progress travel as UTF-8 JSON text in `bytes` fields (`payload_json`,
// `result_json`, `progress_json`): the broker stores and returns jsonb text as it is, so neither side
// pays for google.protobuf.Struct conversions on the hot path.

/** A value JSON can carry. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const lenient = new TextDecoder('utf-8');
const EMPTY = new Uint8Array(0);

/**
 * Encodes a value as JSON text bytes; `undefined` becomes empty bytes, which the broker reads as
 * null. JSON has no big integers, so a BigInt is refused with a message saying what to do (send it
 * as a decimal string, as the fibonacci example does) rather than silently losing digits.
 */
export function encodeJson(value: unknown): Uint8Array {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    if (err instanceof TypeError && /bigint/i.test(err.message)) {
      throw new TypeError('cannot encode a BigInt as JSON: JSON numbers are doubles, so send big integers as decimal strings (e.g. value.toString())', {
        cause: err,
      });
    }
    throw err;
  }
  return text === undefined ? EMPTY : encoder.encode(text);
}

/** Decodes JSON text bytes; empty bytes mean null. Throws on invalid UTF-8 or JSON. */
export function decodeJson(bytes: Uint8Array): JsonValue {
  if (bytes.length === 0) return null;
  return JSON.parse(decoder.decode(bytes)) as JsonValue;
}

/**
 * JSON text bytes as text, exactly (empty bytes mean `null`). Invalid UTF-8 becomes U+FFFD here
 * rather than throwing: such a payload never reaches a handler (decodeJson refuses it), so this only
 * serves listeners that show it.
 */
export function jsonText(bytes: Uint8Array): string {
  return bytes.length === 0 ? 'null' : lenient.decode(bytes);
}
