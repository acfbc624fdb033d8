/**
 * Where a config file's JSON goes wrong, as "line L, column C: why". V8's messages give a position
 * for some mistakes and only a snippet for others ("Unexpected token '}', "…" is not valid JSON"), so
 * the offset comes from a small scan of the grammar instead; the wording stays V8's.
 */
export function describeJsonError(text: string, err: Error): string {
  const at = syntaxErrorOffset(text) ?? Number(/at position (\d+)/.exec(err.message)?.[1] ?? text.length);
  const before = text.slice(0, at).split('\n');
  const why = err.message.replace(/ (?:in JSON )?at position \d+.*$/s, '').replace(/, ".*" is not valid JSON$/s, '');
  return `line ${before.length}, column ${(before.at(-1) ?? '').length + 1}: ${why}`;
}

/** The offset of the first character that cannot continue valid JSON, or undefined when the scan finds none. */
export function syntaxErrorOffset(text: string): number | undefined {
  let i = 0;
  const fail = (): never => {
    throw new JsonStop(i);
  };
  const space = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const string = () => {
    for (i++; i < text.length; i++) {
      const ch = text[i] ?? '';
      if (ch === '"') return void i++;
      if (ch === '\\') i++;
      else if (ch < ' ') fail();
    }
    fail();
  };
  // One entry of an object or array: read it, then "," continues and `close` ends.
  const list = (close: string, entry: () => void) => {
    i++;
    space();
    if (text[i] === close) return void i++;
    for (;;) {
      entry();
      space();
      if (text[i] === ',') i++;
      else if (text[i] === close) return void i++;
      else fail();
    }
  };
  const value = (): void => {
    space();
    const c = text[i];
    if (c === '{') {
      return list('}', () => {
        space();
        if (text[i] !== '"') fail();
        string();
        space();
        if (text[i] !== ':') fail();
        i++;
        value();
      });
    }
    if (c === '[') return list(']', value);
    if (c === '"') return string();
    for (const literal of ['true', 'false', 'null']) if (text.startsWith(literal, i)) return void (i += literal.length);
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    number.lastIndex = i;
    if (number.exec(text) === null) fail();
    i = number.lastIndex;
  };
  try {
    value();
    space();
    return i < text.length ? i : undefined;
  } catch (err) {
    if (err instanceof JsonStop) return err.offset;
    throw err;
  }
}

class JsonStop {
  constructor(readonly offset: number) {}
}
