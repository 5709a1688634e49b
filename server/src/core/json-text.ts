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
  return { text };
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
