import t from 'tap';
import { describeJsonError, syntaxErrorOffset } from '../../src/config/json-position.js';

function why(text: string): string {
  try {
    JSON.parse(text);
  } catch (err) {
    return describeJsonError(text, err as Error);
  }
  throw new Error('valid JSON');
}

t.test('the line and column of the first character that breaks the JSON', async (t) => {
  const cases: ReadonlyArray<readonly [string, string]> = [
    ['{\n  "a": 1\n  "b": 2\n}', "line 3, column 3: Expected ',' or '}' after property value"],
    ['{"a": [1, 2,]}', "line 1, column 13: Unexpected token ']'"],
    ['{"a": 1}\nx', 'line 2, column 1: Unexpected non-whitespace character after JSON'],
    ['{"a": ', 'line 1, column 7: Unexpected end of JSON input'],
    ['{"a\\"b": "x\ny"}', 'line 1, column 12: Bad control character in string literal'],
    ['{"a" 1}', "line 1, column 6: Expected ':' after property name"],
    ['{1: 2}', "line 1, column 2: Expected property name or '}'"],
    ['"unterminated', 'line 1, column 14: Unterminated string'],
    ['-', 'line 1, column 1: No number after minus sign'],
  ];
  for (const [text, want] of cases) t.equal(why(text), want, JSON.stringify(text));
});

t.test('valid JSON has no error offset', async (t) => {
  t.equal(syntaxErrorOffset(' {"a": [true, false, null, -1.5e3, "\\u00e9"], "b": {}, "c": []} '), undefined);
});
