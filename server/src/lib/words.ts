/** "a", "a or b", "a, b or c": a list of alternatives as people write it, for messages. */
export function alternatives(values: readonly string[]): string {
  return values.length <= 1 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}
