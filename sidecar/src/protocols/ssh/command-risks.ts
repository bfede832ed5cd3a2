// Guardrail detectors over an exec command line (rm-rf, privilege-escalation, remote-download-exec).
// SSH carries the command as one string that the target's shell parses; we cannot parse it as that
// shell will, so the detectors err on the side of finding a risk: a false positive asks a human,
// a false negative lets the command through. Pure.
import type { Risk } from '../../policy/index.js';

/** Longer command lines are judged on their head only; the risk then also says so. */
const MAX_SCAN = 16 * 1024;

// Programs that run their arguments as a command: the command word is the next one.
const WRAPPERS = new Set([
  'env',
  'nohup',
  'exec',
  'command',
  'time',
  'nice',
  'ionice',
  'stdbuf',
  'timeout',
  'xargs',
  'builtin',
]);
const ESCALATORS = new Set(['sudo', 'su', 'doas', 'pkexec', 'run0', 'sudoedit']);
const DOWNLOADERS = new Set(['curl', 'wget', 'fetch', 'aria2c']);
const INTERPRETERS = /^(?:ba|da|z|k|c|tc|fi)?sh$|^(?:python[0-9.]*|perl|ruby|node|php|lua)$/;

/** Splits at shell separators (; & | newline, subshells, command substitution); keeps pipes visible. */
function segments(line: string): { words: string[]; pipedFrom: string[] | undefined }[] {
  const out: { words: string[]; pipedFrom: string[] | undefined }[] = [];
  let prev: string[] | undefined;
  for (const part of line.split(/(\|\|?|&&?|;|\n|\$\(|`|\(|\)|<\()/)) {
    if (part === '|') continue; // the next segment reads this one's output
    if (/^(?:\|\||&&?|;|\n|\$\(|`|\(|\)|<\()$/.test(part)) {
      prev = undefined;
      continue;
    }
    const words = part
      .trim()
      .split(/\s+/)
      .filter((w) => w.length > 0)
      .map((w) => w.replace(/^['"\\]+|['"]+$/g, ''));
    if (words.length === 0) continue;
    out.push({ words, pipedFrom: prev });
    prev = words;
  }
  return out;
}

/** The program a segment runs (basename), past variable assignments and wrappers. */
function commandWord(words: readonly string[]): { name: string; args: string[] } | undefined {
  let i = 0;
  while (i < words.length) {
    const w = words[i]!;
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) {
      i++;
      continue;
    }
    const name = w.slice(w.lastIndexOf('/') + 1);
    if (WRAPPERS.has(name)) {
      i++;
      // Skip the wrapper's own options and numeric arguments (timeout 5, nice -n 10).
      while (i < words.length && /^(?:-|[0-9])/.test(words[i]!)) i++;
      continue;
    }
    return { name, args: words.slice(i + 1) };
  }
  return undefined;
}

/** The interpreter a segment runs, directly or under sudo and the like (`sudo -u root bash`). */
function interpreterOf(cmd: { name: string; args: string[] }): string | undefined {
  if (INTERPRETERS.test(cmd.name)) return cmd.name;
  if (!ESCALATORS.has(cmd.name)) return undefined;
  return cmd.args.map((a) => a.slice(a.lastIndexOf('/') + 1)).find((a) => INTERPRETERS.test(a));
}

function isRecursiveForce(args: readonly string[]): boolean {
  let recursive = false;
  let force = false;
  for (const a of args) {
    if (a === '--') break;
    if (a === '--recursive') recursive = true;
    else if (a === '--force') force = true;
    else if (/^-[A-Za-z]+$/.test(a)) {
      if (/[rR]/.test(a)) recursive = true;
      if (a.includes('f')) force = true;
    }
  }
  return recursive && force;
}

/** The guardrail risks of one exec command line. */
export function commandRisks(command: string): Risk[] {
  const risks: Risk[] = [];
  const found = new Set<string>();
  const add = (detector: string, reason: string) => {
    if (found.has(detector)) return;
    found.add(detector);
    risks.push({ detector, reason });
  };
  for (const seg of segments(command.slice(0, MAX_SCAN))) {
    const cmd = commandWord(seg.words);
    if (!cmd) continue;
    // `sudo rm -rf`: the program under an escalation is judged too.
    const rmAt = ESCALATORS.has(cmd.name)
      ? cmd.args.findIndex((a) => a.slice(a.lastIndexOf('/') + 1) === 'rm')
      : -1;
    const rm = cmd.name === 'rm' ? cmd.args : rmAt >= 0 ? cmd.args.slice(rmAt + 1) : undefined;
    if (rm && isRecursiveForce(rm)) add('rm-rf', 'recursive forced delete (rm -rf)');
    if (ESCALATORS.has(cmd.name)) add('privilege-escalation', `privilege escalation (${cmd.name})`);
    const sink = interpreterOf(cmd);
    if (sink && seg.pipedFrom) {
      const source = commandWord(seg.pipedFrom);
      if (source && DOWNLOADERS.has(source.name)) {
        add('remote-download-exec', `downloaded code piped into ${sink} (${source.name} | ${sink})`);
      }
    }
    if (DOWNLOADERS.has(cmd.name) && /(?:ba|z)?sh\s+(?:-c\s+)?["']?\$\(|<\(/.test(command)) {
      add('remote-download-exec', `downloaded code run by a shell (${cmd.name})`);
    }
  }
  if (command.length > MAX_SCAN) add('long-command', `command line longer than ${MAX_SCAN} characters`);
  return risks;
}
