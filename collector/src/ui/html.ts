// Safe-by-default HTML building. Recordings hold agent-controlled text (statements, client names,
// approval comments), so every interpolated value is escaped unless it is already an `Html` made
// by this module: forgetting to escape is not possible, only deliberately opting out with `Html`.

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

/** Escapes text for element content and for quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

/** A fragment of markup that is known to be safe (built by `html`, or escaped). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

export type HtmlValue = Html | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof Html) return value.text;
  if (value === null || value === undefined || value === false || value === true) return '';
  if (Array.isArray(value)) return value.map(render).join('');
  return escapeHtml(String(value));
}

/**
 * Tagged template: `html\`<td>${statement}</td>\`` escapes `statement`; nested `html` fragments and
 * arrays of them are inserted as they are. `false`, `null` and `undefined` render as nothing, so
 * `${cond && html\`…\`}` works.
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  let out = strings[0] ?? '';
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? '');
  return new Html(out);
}

/** Joins fragments with a separator (the separator is escaped like any other value). */
export function joinHtml(parts: readonly HtmlValue[], separator: HtmlValue): Html {
  return new Html(parts.map(render).join(render(separator)));
}
