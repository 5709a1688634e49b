/**
 * Checks for JSON text carried as bytes (payloads, results, progress). The broker stores such text
 * in `jsonb` as it is, without converting it, so it must be valid before it reaches a batch
 * statement: one bad value would otherwise fail the whole batch.
 */

/**
 * Deeper nesting is refused: PostgreSQL's JSON parser recurses and would fail the statement, and
 * Get/List/Watch show payloads and results as `google.protobuf.Value`, two message levels per JSON
 * level, which protobuf decoders with the usual recursion limit of 100 (protobuf-es, upb) cannot
 * read past about 48 levels: one such job would make every List page holding it unreadable.
 */
export const MAX_JSON_DEPTH = 32;

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The text, when `bytes` are UTF-8 JSON within the nesting limit; otherwise a reason. */
export function parseJsonText(bytes: Uint8Array): { text: string } | { error: string } {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch {
    return { error: 'is not valid UTF-8' };
  }
  return checkJsonText(text);
}

export function checkJsonText(text: string): { text: string } | { error: string } {
  const depth = nestingDepth(text);
  if (depth > MAX_JSON_DEPTH) return { error: `nests ${depth} levels deep; the limit is ${MAX_JSON_DEPTH}` };
  try {
    JSON.parse(text);
  } catch (error) {
    return { error: `is not valid JSON (${(error as Error).message})` };
  }
  // PostgreSQL's jsonb cannot hold the NUL character, which JSON allows as \u0000.
  if (text.includes('\\u0000')) return { error: 'contains \\u0000, which PostgreSQL cannot store' };
  // Rarer values JSON allows but the broker cannot keep: looked for only when the text hints at them.
  if (SUSPECT.test(text)) {
    const problem = unstorableValue(text);
    if (problem) return { error: problem };
  }
  return { text };
}

/** A surrogate escape, a 3+ digit exponent or a long run of digits: the only ways into `unstorableValue`'s cases. */
const SUSPECT = /\\u[dD][89a-fA-F]|[eE][+-]?[0-9]{3}|[0-9]{300}/;

/**
 * Values valid JSON may hold that the broker could not store or show: a lone UTF-16 surrogate
 * (`"\ud800"`: jsonb refuses it), a number beyond a double (`1e400`: google.protobuf.Value, which
 * Get/List/Watch show payloads as, cannot hold Infinity), or one beyond PostgreSQL's numeric
 * (`1e-20000`). Null when there is none. Found by the fuzz test (test/fuzz.test.ts).
 */
function unstorableValue(text: string): string | null {
  let problem: string | null = null;
  const reviver = (key: string, value: unknown, context?: { source?: string }) => {
    if (problem) return value;
    if (!key.isWellFormed() || (typeof value === 'string' && !value.isWellFormed())) {
      problem = 'holds a lone UTF-16 surrogate escape (\\ud800-\\udfff not in a pair), which PostgreSQL cannot store';
    } else if (typeof value === 'number') {
      const source = context?.source ?? String(value);
      if (!Number.isFinite(value) || source.length > 1000 || /[eE][+-]?0*[1-9][0-9]{3}/.test(source)) {
        problem = `holds the number ${source.slice(0, 40)}, beyond the range of a double (±1.8e308) that payloads and results are shown as`;
      }
    }
    return value;
  };
  JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
  return problem;
}

export function isValidJsonText(bytes: Uint8Array): boolean {
  return 'text' in parseJsonText(bytes);
}

/** Deepest nesting of arrays and objects, ignoring brackets inside strings. */
export function nestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > deepest) deepest = depth;
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--;
  }
  return deepest;
}
