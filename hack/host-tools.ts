/**
 * The host-tools list (hack/host-tools.txt) and a finder for the external commands that the
 * project's scripts and test harness run. hack/host-tools.test.ts holds the two together: a command
 * that is spawned but not listed fails the unit tests, so a fresh machine cannot lack it silently.
 */
import { readFileSync } from 'node:fs';

export type HostToolScope = 'build' | 'host' | 'cluster' | 'optional';
const SCOPES: readonly string[] = ['build', 'host', 'cluster', 'optional'];

export interface HostTool {
  name: string;
  /** Debian package, or `-` for a prerequisite that does not come from apt. */
  pkg: string;
  scope: HostToolScope;
  /** A command on PATH, an absolute path, a glob, or `static:PATH`. */
  check: string;
}

export function readHostTools(file: string): HostTool[] {
  const tools: HostTool[] = [];
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/(^|\s)#.*$/, '').trim();
      if (!line) return;
      const [name, pkg, scope, check, ...rest] = line.split(/\s+/);
      if (!name || !pkg || !check || !scope || rest.length || !SCOPES.includes(scope)) {
        throw new Error(
          `${file}:${i + 1}: expected NAME PACKAGE SCOPE(${SCOPES.join('|')}) CHECK, got: ${raw}`,
        );
      }
      tools.push({ name, pkg, scope: scope as HostToolScope, check });
    });
  return tools;
}

/** A command found in a source file, with where it was found. */
export interface SpawnedCommand {
  command: string;
  file: string;
  line: number;
}

// Words that keep the shell at a command position.
const SHELL_KEYWORDS = new Set(
  'if then else elif fi while until do done esac function ! time { } [[ ]]'.split(' '),
);
// Prefixes after which the next word is the command that really runs.
const WRAPPERS = new Set(['command', 'exec', 'env', 'sudo', 'setsid', 'timeout', 'nice', 'xargs', 'nohup']);
const COMMAND_NAME = /^([a-z][a-z0-9._+-]*|\/(usr\/)?s?bin\/[a-z][\w.+-]*|\[)$/;

/**
 * Commands a bash script runs: the first word of every simple command (after assignments and
 * redirections; through wrappers such as `env` and `setsid`), in command substitutions and
 * subshells too. Quoted text, variables (`"$BIN/kubectl"`), `for`/`case` word lists, heredoc
 * bodies and functions the script defines are not commands.
 */
export function shellCommands(source: string, file = '<script>'): SpawnedCommand[] {
  const functions = shellFunctions(source);
  return new ShellScanner(stripHeredocs(source.split('\n')).join('\n'), file)
    .scan()
    .filter((c) => !functions.has(c.command));
}

/** Names of the functions a script defines (a script that sources it may call them). */
export function shellFunctions(source: string): Set<string> {
  const functions = new Set<string>();
  for (const l of source.split('\n')) {
    const m = /^\s*(?:function\s+)?([A-Za-z_][\w-]*)\s*\(\)/.exec(l);
    if (m?.[1]) functions.add(m[1]);
  }
  return functions;
}

function stripHeredocs(lines: string[]): string[] {
  const out: string[] = [];
  let end: string | undefined;
  for (const l of lines) {
    if (end !== undefined) {
      out.push('');
      if (l.trim() === end) end = undefined;
      continue;
    }
    out.push(l);
    const m = /<<-?\s*(['"]?)([A-Za-z_]\w*)\1/.exec(l);
    if (m?.[2]) end = m[2];
  }
  return out;
}

/** A small bash reader: enough structure to find command positions, not a parser. */
class ShellScanner {
  private i = 0;
  private line = 1;
  private readonly found: SpawnedCommand[] = [];
  private readonly src: string;
  private readonly file: string;

  constructor(src: string, file: string) {
    this.src = src;
    this.file = file;
  }

  scan(): SpawnedCommand[] {
    this.commands(undefined);
    return this.found;
  }

  /** Reads commands until `close` (a `)` of $( ) or a backquote) or the end. */
  private commands(close: string | undefined): void {
    let atStart = true;
    let skipWords = 0; // words to pass over (a wrapper's argument, a redirection target)
    let wrapper = '';
    let listUntil = ''; // `for x in …; do`, `case … in`: words that are not commands
    let casePatterns = false;
    let depth = 0; // ( ) nesting inside this context
    while (this.i < this.src.length) {
      const ch = this.src[this.i] ?? '';
      const two = this.src.slice(this.i, this.i + 2);
      if (close && ch === close && depth === 0) {
        this.i++;
        return;
      }
      if (ch === '\n') this.line++;
      if (ch === '#' && /[\s;(|&]/.test(this.src[this.i - 1] ?? '\n')) {
        while (this.i < this.src.length && this.src[this.i] !== '\n') this.i++;
        continue;
      }
      if (ch === '\\') {
        if (this.src[this.i + 1] === '\n') this.line++;
        this.i += 2;
        continue;
      }
      if (casePatterns && ch === ')') {
        casePatterns = false;
        atStart = true;
        this.i++;
        continue;
      }
      if (two === ';;') {
        casePatterns = true;
        this.i += 2;
        continue;
      }
      if (ch === '\n' || ch === ';' || ch === '|' || ch === '&' || ch === '(' || ch === ')') {
        if (ch === '(' && !casePatterns) depth++;
        if (ch === ')') depth = Math.max(0, depth - 1);
        if (!listUntil || ch === ';' || ch === '\n') {
          if (listUntil !== 'esac') listUntil = listUntil === 'do' ? '' : listUntil;
          atStart = !casePatterns;
          skipWords = 0;
        }
        if (/[<>]/.test(this.src[this.i + 1] ?? '') && ch === '&') this.i++;
        this.i++;
        continue;
      }
      if (/\s/.test(ch)) {
        this.i++;
        continue;
      }
      const word = this.word(close);
      if (word === 'esac') {
        casePatterns = false;
        atStart = false;
        continue;
      }
      if (casePatterns) continue;
      if (listUntil === 'in-case') {
        if (word === 'in') {
          listUntil = '';
          casePatterns = true;
        }
        continue;
      }
      if (listUntil === 'do') {
        if (word === 'do') {
          listUntil = '';
          atStart = true;
        }
        continue;
      }
      if (!atStart) continue;
      if (skipWords > 0) {
        skipWords--;
        continue;
      }
      if (word === 'for' || word === 'select') {
        listUntil = 'do';
        continue;
      }
      if (word === 'case') {
        listUntil = 'in-case';
        continue;
      }
      if (SHELL_KEYWORDS.has(word) || /^[A-Za-z_]\w*(\[[^\]]*\])?\+?=/.test(word)) continue;
      if (/^\d*[<>]/.test(word)) {
        if (/^\d*[<>]+&?$/.test(word)) skipWords = 1;
        continue;
      }
      if (wrapper && word.startsWith('-')) continue;
      if (WRAPPERS.has(word)) {
        if (word !== 'command') this.add(word);
        wrapper = word;
        if (word === 'timeout' || word === 'nice') skipWords = 1;
        continue;
      }
      wrapper = '';
      if (COMMAND_NAME.test(word)) this.add(word);
      atStart = false;
    }
  }

  /** Reads one word; command substitutions inside it are scanned as commands of their own. */
  private word(close: string | undefined): string {
    let text = '';
    while (this.i < this.src.length) {
      const ch = this.src[this.i] ?? '';
      if (/[\s;|&()]/.test(ch) || ch === close) break;
      if (ch === '<' || ch === '>') {
        if (text && !/^\d+$/.test(text)) break;
        text += ch;
        this.i++;
        continue;
      }
      if (ch === "'") {
        const end = this.src.indexOf("'", this.i + 1);
        this.i = end < 0 ? this.src.length : end + 1;
        text += "''";
        continue;
      }
      if (ch === '"') {
        this.i++;
        this.doubleQuoted();
        text += '""';
        continue;
      }
      if (ch === '$' || ch === '`') {
        this.expansion();
        text += '$';
        continue;
      }
      if (ch === '\\') this.i++;
      text += this.src[this.i] ?? '';
      this.i++;
      // An array assignment, `a=(x y)` or `a+=(x)`: its elements are words, not commands.
      if (/^[A-Za-z_]\w*\+?=$/.test(text) && this.src[this.i] === '(') {
        this.i = this.matching(this.i, '(', ')');
        text += '()';
      }
    }
    return text;
  }

  private doubleQuoted(): void {
    while (this.i < this.src.length) {
      const ch = this.src[this.i] ?? '';
      if (ch === '"') {
        this.i++;
        return;
      }
      if (ch === '\n') this.line++;
      if (ch === '\\') this.i += 2;
      else if (ch === '$' || ch === '`') this.expansion();
      else this.i++;
    }
  }

  /** `$(…)` and backquotes hold commands; `$((…))`, `${…}` and `$name` do not. */
  private expansion(): void {
    const rest = this.src.slice(this.i, this.i + 3);
    if (rest.startsWith('$((')) {
      this.i = this.matching(this.i + 1, '(', ')');
    } else if (rest.startsWith('$(')) {
      this.i += 2;
      this.commands(')');
    } else if (rest.startsWith('`')) {
      this.i += 1;
      this.commands('`');
    } else if (rest.startsWith('${')) {
      this.i = this.matching(this.i + 1, '{', '}');
    } else {
      this.i++;
      while (/[\w@*#?$!-]/.test(this.src[this.i] ?? '') && this.i < this.src.length) {
        const single = /[@*#?$!-]/.test(this.src[this.i] ?? '');
        this.i++;
        if (single) break;
      }
    }
  }

  private matching(from: number, open: string, close: string): number {
    let depth = 0;
    for (let j = from; j < this.src.length; j++) {
      if (this.src[j] === open) depth++;
      else if (this.src[j] === close && --depth === 0) return j + 1;
      else if (this.src[j] === '\n') this.line++;
    }
    return this.src.length;
  }

  private add(command: string): void {
    this.found.push({ command, file: this.file, line: this.line });
  }
}

/**
 * Commands a TypeScript file runs: the literal first argument of spawn/execFile/run-style calls,
 * `command: '…'` options, and host binaries named by absolute path in UPPER_CASE constants.
 */
export function typescriptCommands(source: string, file = '<ts>'): SpawnedCommand[] {
  const found: SpawnedCommand[] = [];
  // `run`, `runOk` and `command:` mean a process only in files that use the testkit's helpers.
  const usesRun = /import\s*\{[^}]*\brun(Ok)?\b[^}]*\}\s*from\s*'(\.\/run\.js|@chaperone\/testkit)'/.test(
    source,
  );
  const usesStartProcess = /\bstartProcess\b/.test(source);
  const patterns = [
    /\b(?:spawn|spawnSync|execFile|execFileSync|execSync)\(\s*(['"`])([^'"`$]+)\1/g,
    ...(usesRun ? [/\b(?:run|runOk)\(\s*(['"`])([^'"`$]+)\1/g] : []),
    ...(usesStartProcess ? [/\bcommand:\s*(['"`])([^'"`$]+)\1/g] : []),
    /\bconst\s+[A-Z][A-Z0-9_]*\s*=\s*(?:process\.env\.\w+\s*\?\?\s*)?(['"])(\/(?:usr\/)?s?bin\/[^'"]+)\1/g,
  ];
  source.split('\n').forEach((text, i) => {
    if (/^\s*(\/\/|\*)/.test(text)) return;
    for (const re of patterns) {
      for (const m of text.matchAll(re)) {
        const command = (m[2] ?? '').trim().split(/\s+/)[0] ?? '';
        if (command) found.push({ command, file, line: i + 1 });
      }
    }
  });
  return found;
}
