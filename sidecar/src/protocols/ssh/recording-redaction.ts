// What the SSH recording keeps of command lines and terminal output: the value detectors (private
// keys, cloud keys, JWTs, and OpenSSH certificates) blank out whatever carries one. Only the recording
// is redacted; the agent's live stream is its own business. Pure.
import type { RecordingEvent } from '@chaperone/api';
import { BUILTIN_DETECTORS, MAX_SCAN_CHARS } from '../../masking/index.js';
import type { AsciicastFrame } from './hooks.js';

type OutputFrames = Extract<RecordingEvent, { type: 'output' }>['data']['asciicast'];

const SSH_CERTIFICATE = /-cert-v01@openssh\.com\s+AAAA/;
const DETECTORS: ReadonlyArray<readonly [string, (text: string) => boolean]> = [
  ['private-key', BUILTIN_DETECTORS['private-key']],
  ['cloud-key', BUILTIN_DETECTORS['cloud-key']],
  ['jwt', BUILTIN_DETECTORS.jwt],
  ['ssh-certificate', (t) => t.includes('-cert-v01@openssh.com') && SSH_CERTIFICATE.test(t)],
];

/** The detectors a text trips; texts longer than the scan limit are judged in overlapping windows. */
export function secretsIn(text: string): string[] {
  const found = new Set<string>();
  const step = MAX_SCAN_CHARS - 4096;
  for (let at = 0; at === 0 || at + 4096 < text.length; at += step) {
    const window = text.slice(at, at + MAX_SCAN_CHARS);
    for (const [name, test] of DETECTORS) if (test(window)) found.add(name);
  }
  return [...found];
}

const note = (kinds: string[]) => `[chaperone: redacted, contains ${kinds.join(', ')}]`;

/** A command line as recorded: its program word kept, the rest replaced when it carries a secret. */
export function redactCommandText(text: string): string {
  const kinds = secretsIn(text);
  if (kinds.length === 0) return text;
  const program = text.trim().split(/\s+/, 1)[0] ?? '';
  return `${program.slice(0, 64)} ${note(kinds)}`;
}

/**
 * One batch of terminal frames as recorded: output only (resizes are not part of the schema); a batch
 * whose joined output carries a secret becomes one note at the first frame's time, so a key split
 * over frames of the batch is caught too.
 */
export function redactOutputFrames(frames: readonly AsciicastFrame[]): OutputFrames {
  const out: OutputFrames = frames.filter((f) => f[1] === 'o').map((f) => [f[0], 'o', f[2]]);
  if (out.length === 0) return out;
  const kinds = secretsIn(out.map((f) => f[2]).join(''));
  return kinds.length === 0 ? out : [[out[0]![0], 'o', `${note(kinds)}\r\n`]];
}
