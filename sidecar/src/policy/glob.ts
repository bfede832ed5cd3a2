// Glob → RegExp, compiled once per policy. Every glob is anchored (matches the whole string);
// characters other than '*' and '?' are literal.

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/;

/** Regex source for a glob: '*' becomes `star`, '?' becomes `one`, everything else is literal. */
export function globSource(glob: string, star: string, one: string): string {
  let out = '';
  for (const ch of glob) {
    if (ch === '*') out += star;
    else if (ch === '?') out += one;
    else out += REGEX_SPECIAL.test(ch) ? `\\${ch}` : ch;
  }
  return out;
}

/** A glob over one name segment (schema, table, column): '*' any run, '?' one character. */
export function segmentGlob(glob: string, flags = ''): RegExp {
  return new RegExp(`^${globSource(glob, '.*', '.')}$`, `s${flags}`);
}

/** A host glob of a forward target. Narrow: '*' and '?' stay within one DNS label; broad: anything. */
export function hostGlob(glob: string, broad: boolean): RegExp {
  return new RegExp(
    `^${globSource(glob.toLowerCase(), broad ? '.*' : '[^.]*', broad ? '.' : '[^.]')}$`,
    'is',
  );
}

/** True when the glob has no wildcard, so plain string equality can replace the RegExp. */
export function isLiteralGlob(glob: string): boolean {
  return !glob.includes('*') && !glob.includes('?');
}

// Characters that let one shell command line run a second command or redirect: ; & | ` $ ( ) < >
// and line breaks. An allow glob's wildcards never match them, so "systemctl status *" cannot be
// stretched into "systemctl status x; rm -rf /". Written literally in the glob, they match.
const SHELL_CONTROL_CLASS = '[^;&|`$()<>\\n\\r\\0]';

/**
 * A shell-style command glob over a whole command line. `permissive` (deny rules) lets '*' and '?'
 * match anything; otherwise they never match shell control characters.
 */
export function commandGlob(glob: string, permissive: boolean): RegExp {
  const one = permissive ? '[\\s\\S]' : SHELL_CONTROL_CLASS;
  return new RegExp(`^${globSource(glob, `${one}*`, one)}$`);
}

// Not a shell parser: enough to see "ls; rm -rf /" as two commands, so a deny glob can catch the second.
const COMMAND_SEPARATORS = /&&|\|\||[;&|\n\r`]|\$\(|[()]/;

/** The command line and each simple command inside it, trimmed, for deny globs. */
export function commandSegments(command: string): string[] {
  const parts = command
    .split(COMMAND_SEPARATORS)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  return parts.length > 1 ? [command, ...parts] : [command];
}
