/** Name globs for groups and image selection: `*` matches any run of characters, `?` one character. */
export function isGlob(pattern: string): boolean {
  return /[*?]/.test(pattern);
}

export function globToRegExp(pattern: string): RegExp {
  let re = '^';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[\\^$.+()|[\]{}]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

export function matchGlob(pattern: string, names: Iterable<string>): string[] {
  const re = globToRegExp(pattern);
  const out: string[] = [];
  for (const n of names) if (re.test(n)) out.push(n);
  return out;
}
