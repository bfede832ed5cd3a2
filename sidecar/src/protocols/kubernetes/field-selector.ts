// The subset of k8s.io/apimachinery/pkg/fields the API server uses to turn
// `fieldSelector=metadata.name=X` into a request name: term splitting with `\` escapes, sorted
// terms, first `=`/`==` term on the field. Any parse error means "no name", as in Go.

const TERM_OPERATORS = ['!=', '==', '='] as const;

function splitTerms(selector: string): string[] {
  if (selector === '') return [];
  const terms: string[] = [];
  let start = 0;
  let inSlash = false;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (inSlash) inSlash = false;
    else if (c === '\\') inSlash = true;
    else if (c === ',') {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms;
}

function splitTerm(term: string): { lhs: string; op: string; rhs: string } | undefined {
  for (let i = 0; i < term.length; i++) {
    const rest = term.slice(i);
    for (const op of TERM_OPERATORS) {
      if (rest.startsWith(op)) return { lhs: term.slice(0, i), op, rhs: term.slice(i + op.length) };
    }
  }
  return undefined;
}

function unescapeValue(s: string): string | undefined {
  let out = '';
  let inSlash = false;
  for (const c of s) {
    if (inSlash) {
      if (c !== '\\' && c !== ',' && c !== '=') return undefined;
      out += c;
      inSlash = false;
    } else if (c === '\\') inSlash = true;
    else if (c === ',' || c === '=') return undefined;
    else out += c;
  }
  return inSlash ? undefined : out;
}

/** The value `field` must equal for the selector to match, or undefined (none, or parse error). */
export function fieldSelectorExactName(selector: string, field: string): string | undefined {
  // Go sorts the raw terms (byte order) before parsing, so the first match is the smallest term.
  const terms = splitTerms(selector).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  let found: string | undefined;
  for (const term of terms) {
    if (term === '') continue;
    const t = splitTerm(term);
    if (!t) return undefined;
    const value = unescapeValue(t.rhs);
    if (value === undefined) return undefined;
    if (found === undefined && t.lhs === field && t.op !== '!=') found = value;
  }
  return found;
}

/** apimachinery path.IsValidPathSegmentName. */
export function isValidPathSegmentName(name: string): boolean {
  return name !== '.' && name !== '..' && !name.includes('/') && !name.includes('%');
}
