/**
 * Finding places in JSON text, so errors in a facility file name a line: where
 * a syntax error is (Node 20's JSON.parse does not say), and where the value at
 * a schema path such as `resources[3].ports[0].capacity` sits.
 */

class Stop {
  constructor(readonly at: number) {}
}

/** A cursor over JSON text that skips values and throws `Stop` at a syntax error. */
class Scanner {
  i = 0;
  constructor(readonly text: string) {}

  fail(): never {
    throw new Stop(this.i);
  }

  ws(): void {
    const t = this.text;
    while (this.i < t.length) {
      const c = t.charCodeAt(this.i);
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return;
      this.i++;
    }
  }

  /** A string at the cursor; returns its raw text between the quotes. */
  string(): string {
    const t = this.text;
    const start = ++this.i;
    while (this.i < t.length) {
      const ch = t[this.i] as string;
      if (ch === '"') return t.slice(start, this.i++);
      if (ch < " ") this.fail();
      if (ch === "\\") {
        const esc = t[this.i + 1];
        if (esc === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.i + 2, this.i + 6))) {
            this.i += 2;
            this.fail();
          }
          this.i += 6;
        } else if (esc !== undefined && '"\\/bfnrt'.includes(esc)) this.i += 2;
        else {
          this.i++;
          this.fail();
        }
      } else this.i++;
    }
    return this.fail();
  }

  literal(word: string): void {
    if (this.text.startsWith(word, this.i)) this.i += word.length;
    else this.fail();
  }

  number(): void {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.text.slice(this.i, this.i + 400));
    if (!m || m[0] === "" || m[0] === "-") this.fail();
    this.i += (m as RegExpExecArray)[0].length;
  }

  /**
   * Scans one value. With a path, descends along it and returns the offset of
   * the value it names (or of the deepest enclosing value found); -1 otherwise.
   */
  value(path?: readonly (string | number)[], depth = 0): number {
    this.ws();
    const at = this.i;
    if (path && depth === path.length) {
      this.skip();
      return at;
    }
    const want = path?.[depth];
    const ch = this.text[this.i];
    let found = -1;
    if (ch === "{") {
      this.i++;
      this.ws();
      if (this.text[this.i] === "}") {
        this.i++;
        return path ? at : -1;
      }
      for (;;) {
        this.ws();
        if (this.text[this.i] !== '"') this.fail();
        const raw = this.string();
        this.ws();
        if (this.text[this.i] !== ":") this.fail();
        this.i++;
        const key = raw.includes("\\") ? (JSON.parse(`"${raw}"`) as string) : raw;
        if (found < 0 && want !== undefined && key === want) found = this.value(path, depth + 1);
        else this.value();
        this.ws();
        if (this.text[this.i] === ",") this.i++;
        else if (this.text[this.i] === "}") {
          this.i++;
          break;
        } else this.fail();
      }
    } else if (ch === "[") {
      this.i++;
      this.ws();
      if (this.text[this.i] === "]") {
        this.i++;
        return path ? at : -1;
      }
      for (let index = 0; ; index++) {
        if (found < 0 && want === index) found = this.value(path, depth + 1);
        else this.value();
        this.ws();
        if (this.text[this.i] === ",") this.i++;
        else if (this.text[this.i] === "]") {
          this.i++;
          break;
        } else this.fail();
      }
    } else {
      this.skip();
    }
    return path ? (found >= 0 ? found : at) : -1;
  }

  private skip(): void {
    const ch = this.text[this.i];
    if (ch === "{" || ch === "[") this.value();
    else if (ch === '"') this.string();
    else if (ch === "t") this.literal("true");
    else if (ch === "f") this.literal("false");
    else if (ch === "n") this.literal("null");
    else if (ch === "-" || (ch !== undefined && ch >= "0" && ch <= "9")) this.number();
    else this.fail();
  }
}

/** The offset of the first JSON syntax error (the text's length when there is none). */
export function jsonErrorOffset(text: string): number {
  const s = new Scanner(text);
  try {
    s.value();
    s.ws();
    if (s.i < text.length) s.fail();
  } catch (e) {
    if (e instanceof Stop) return e.at;
    throw e;
  }
  return text.length;
}

/**
 * The offset of the value at a path like `resources[3].ports[0].capacity` in
 * valid JSON text; when the path goes further than the text (a missing field),
 * the offset of the deepest value on the way.
 */
export function jsonPathOffset(text: string, path: string): number {
  const segments: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    segments.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  }
  try {
    return Math.max(0, new Scanner(text).value(segments));
  } catch (e) {
    if (e instanceof Stop) return 0;
    throw e;
  }
}

/** 1-based line and column of an offset. */
export function lineCol(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let last = -1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) {
    line++;
    last = i;
  }
  return { line, col: offset - last };
}
