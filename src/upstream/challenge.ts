/** One challenge from a `WWW-Authenticate` header (RFC 7235 §4.1). */
export interface Challenge {
  /** Lowercased: scheme names are case-insensitive. */
  readonly scheme: string;
  /** Parameter names lowercased; values unquoted. */
  readonly params: ReadonlyMap<string, string>;
}

const TOKEN_CHAR = /[A-Za-z0-9!#$%&'*+.^_`|~-]/;

/**
 * Parses every challenge in one or more `WWW-Authenticate` values. Registries send realm URLs with
 * query strings (commas inside quotes), several challenges in one header or several headers, and
 * sometimes bare-token values (`service=gcr.io` unquoted has been reported; registry-protocol.md §3.1).
 * Never throws: garbage yields fewer challenges.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  const values = typeof header === 'string' ? [header] : header;
  return values.flatMap(parseOne);
}

function parseOne(input: string): Challenge[] {
  const out: Challenge[] = [];
  const s = new Scanner(input);
  // Bounded: every iteration consumes at least one character or stops.
  while (!s.done()) {
    s.skip(/[\s,]/);
    const scheme = s.token();
    if (scheme === '') {
      s.advance();
      continue;
    }
    const params = new Map<string, string>();
    s.skip(/[ \t]/);
    while (!s.done()) {
      const mark = s.pos;
      s.skip(/[\s,]/);
      if (s.done()) break;
      const name = s.token();
      if (name === '') {
        // A stray character: skip to the next item (always progresses: it is no token char or comma).
        s.skipUntil(',');
        continue;
      }
      s.skip(/[ \t]/);
      if (s.peek() !== '=') {
        // A token without `=` starts the next challenge.
        s.pos = mark;
        break;
      }
      s.advance();
      s.skip(/[ \t]/);
      const value = s.peek() === '"' ? s.quoted() : s.token();
      params.set(name.toLowerCase(), value);
      s.skip(/[ \t]/);
      // token68 padding such as `abc==`: ignore the rest of this item.
      if (!s.done() && s.peek() !== ',') s.skipUntil(',');
    }
    out.push({ scheme: scheme.toLowerCase(), params });
  }
  return out;
}

class Scanner {
  pos = 0;
  constructor(private readonly text: string) {}

  done(): boolean {
    return this.pos >= this.text.length;
  }
  peek(): string {
    return this.text[this.pos] ?? '';
  }
  advance(): void {
    this.pos++;
  }
  skip(chars: RegExp): void {
    while (!this.done() && chars.test(this.peek())) this.pos++;
  }
  skipUntil(ch: string): void {
    while (!this.done() && this.peek() !== ch) this.pos++;
  }
  token(): string {
    const start = this.pos;
    while (!this.done() && TOKEN_CHAR.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }
  /** A quoted-string with backslash escapes; an unterminated one runs to the end. */
  quoted(): string {
    this.pos++;
    let value = '';
    while (!this.done()) {
      const ch = this.peek();
      this.pos++;
      if (ch === '"') return value;
      if (ch === '\\' && !this.done()) {
        value += this.peek();
        this.pos++;
      } else {
        value += ch;
      }
    }
    return value;
  }
}
