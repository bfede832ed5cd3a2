import { describe, expect, it } from 'vitest';
import { redactCommandText, redactOutputFrames, secretsIn } from './recording-redaction.js';

const PEM =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
const CERT = 'ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQ chaperone:x';

describe('recording redaction', () => {
  it('names what a text carries', () => {
    expect(secretsIn(PEM)).toEqual(['private-key']);
    expect(secretsIn('export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE')).toEqual(['cloud-key']);
    expect(secretsIn(CERT)).toEqual(['ssh-certificate']);
    expect(secretsIn('uptime')).toEqual([]);
  });

  it('keeps only the program word of a command line carrying a secret', () => {
    expect(redactCommandText('uptime')).toBe('uptime');
    const r = redactCommandText('aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE');
    expect(r).toBe('aws [chaperone: redacted, contains cloud-key]');
  });

  it('drops resize frames and blanks a batch with a key split over frames', () => {
    const frames = [
      [0.1, 'o', PEM.slice(0, 20)],
      [0.2, 'r', '80x24'],
      [0.3, 'o', PEM.slice(20)],
    ] as const;
    const out = redactOutputFrames(frames);
    expect(out).toHaveLength(1);
    expect(JSON.stringify(out)).not.toContain('PRIVATE KEY');
    expect(out[0]?.[0]).toBe(0.1);
    expect(redactOutputFrames([[0, 'o', 'load average: 0.1']])).toEqual([[0, 'o', 'load average: 0.1']]);
    expect(redactOutputFrames([[0, 'r', '80x24']])).toEqual([]);
  });

  it('finds a key beyond the scan window of one pass', () => {
    expect(secretsIn(`${'x'.repeat(200_000)}${PEM}`)).toEqual(['private-key']);
  });
});
