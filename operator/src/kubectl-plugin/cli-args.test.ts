import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HELP, MAX_COMMENT_LENGTH, type PluginCommand, parseArgs, UsageError } from './cli-args.js';

const parse = (line: string[]) => parseArgs(line);

describe('parseArgs', () => {
  it.each<[string[], PluginCommand]>([
    [[], { command: 'help' }],
    [['--help'], { command: 'help' }],
    [['-h'], { command: 'help' }],
    [['help'], { command: 'help' }],
    [['help', 'deny'], { command: 'help', topic: 'deny' }],
    [['approve', '--help'], { command: 'help', topic: 'approve' }],
    [['requests', '-h'], { command: 'help', topic: 'requests' }],
    [['requests'], { command: 'requests', connection: {}, allNamespaces: false, all: false, watch: false }],
    [
      ['requests', '-n', 'team-a'],
      {
        command: 'requests',
        connection: { namespace: 'team-a' },
        allNamespaces: false,
        all: false,
        watch: false,
      },
    ],
    [
      ['requests', '--namespace=team-a'],
      {
        command: 'requests',
        connection: { namespace: 'team-a' },
        allNamespaces: false,
        all: false,
        watch: false,
      },
    ],
    [
      ['requests', '-nteam-a'],
      {
        command: 'requests',
        connection: { namespace: 'team-a' },
        allNamespaces: false,
        all: false,
        watch: false,
      },
    ],
    [
      ['requests', '-n=team-a'],
      {
        command: 'requests',
        connection: { namespace: 'team-a' },
        allNamespaces: false,
        all: false,
        watch: false,
      },
    ],
    [
      ['requests', '-A', '--all'],
      { command: 'requests', connection: {}, allNamespaces: true, all: true, watch: false },
    ],
    [
      ['requests', '-w'],
      { command: 'requests', connection: {}, allNamespaces: false, all: false, watch: true },
    ],
    [
      ['describe', 'ar-1', '--collector', 'https://c.example'],
      { command: 'describe', connection: {}, name: 'ar-1', collector: 'https://c.example' },
    ],
    [
      ['requests', '--all-namespaces'],
      { command: 'requests', connection: {}, allNamespaces: true, all: false, watch: false },
    ],
    [
      ['requests', '--all=false'],
      { command: 'requests', connection: {}, allNamespaces: false, all: false, watch: false },
    ],
    [
      ['--kubeconfig', '/tmp/kc', '--context=prod', 'requests'],
      {
        command: 'requests',
        connection: { kubeconfig: '/tmp/kc', context: 'prod' },
        allNamespaces: false,
        all: false,
        watch: false,
      },
    ],
    [['approve', 'r1'], { command: 'approve', connection: {}, name: 'r1' }],
    [
      ['approve', 'r1', '-n', 'ns', '--comment', 'ticket OPS-142'],
      { command: 'approve', connection: { namespace: 'ns' }, name: 'r1', comment: 'ticket OPS-142' },
    ],
    [
      ['-n', 'ns', 'approve', '-m', 'ok', 'r1'],
      { command: 'approve', connection: { namespace: 'ns' }, name: 'r1', comment: 'ok' },
    ],
    [['approve', 'r1', '--comment='], { command: 'approve', connection: {}, name: 'r1' }],
    [
      ['approve', '--comment', '--not-a-flag', 'r1'],
      { command: 'approve', connection: {}, name: 'r1', comment: '--not-a-flag' },
    ],
    [['approve', '--', 'r1'], { command: 'approve', connection: {}, name: 'r1' }],
    [
      ['deny', 'r1', '--reason', 'not during the freeze'],
      { command: 'deny', connection: {}, name: 'r1', reason: 'not during the freeze' },
    ],
    [
      ['deny', '--reason=no', 'r1', '-n', 'ns', '--context', 'c'],
      { command: 'deny', connection: { namespace: 'ns', context: 'c' }, name: 'r1', reason: 'no' },
    ],
  ])('%j', (argv, expected) => {
    expect(parse(argv)).toEqual(expected);
  });

  it.each<[string[], RegExp]>([
    [['frobnicate'], /unknown command "frobnicate"; commands are requests, describe, approve, deny/],
    [['help', 'frobnicate'], /unknown command "frobnicate"/],
    [['requests', '--bogus'], /unknown flag --bogus/],
    [['requests', '-x'], /unknown flag -x/],
    [['requests', '-n'], /flag -n needs a value/],
    [['requests', '-n', ''], /--namespace needs a non-empty value/],
    [['requests', 'r1'], /requests takes no arguments/],
    [['requests', '-A', '-n', 'ns'], /either -n NAMESPACE or -A/],
    [['requests', '--comment', 'x'], /requests does not take --comment/],
    [['requests', '--all=maybe'], /--all takes no value/],
    [['approve'], /approve needs the name of an AccessRequest; list them with kubectl chaperone requests/],
    [['approve', 'a', 'b'], /exactly one AccessRequest name \(got a b\)/],
    [['approve', 'r1', '--reason', 'x'], /--reason is for deny; approve takes --comment/],
    [['approve', 'r1', '-A'], /-A and --all only apply to requests/],
    [
      ['approve', 'r1', '--comment', 'x'.repeat(MAX_COMMENT_LENGTH + 1)],
      /--comment is at most 1024 characters/,
    ],
    [['deny', 'r1'], /deny needs --reason TEXT/],
    [['deny', 'r1', '--reason', '   '], /deny needs --reason TEXT/],
    [['deny', 'r1', '--reason'], /flag --reason needs a value/],
    [['deny', 'r1', '--comment', 'x'], /deny takes --reason TEXT/],
    [['deny', '--reason', 'x'], /deny needs the name of an AccessRequest/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parse(argv)).toThrow(UsageError);
    expect(() => parse(argv)).toThrow(message);
  });

  it('never throws anything but a UsageError, whatever the arguments', () => {
    const token = fc.oneof(
      fc.constantFrom(
        'requests',
        'approve',
        'deny',
        'help',
        '-n',
        '-A',
        '--all',
        '--reason',
        '--comment',
        '-m',
        '--',
        '-h',
        '--context=x',
        '=',
      ),
      fc.string({ maxLength: 6 }),
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 8 }), (argv) => {
        try {
          const cmd = parseArgs(argv);
          // A parsed deny always has a real reason; approve/deny always name one request.
          if (cmd.command === 'deny') expect(cmd.reason.trim()).not.toBe('');
          if (cmd.command === 'deny' || cmd.command === 'approve') expect(cmd.name).not.toBe('');
        } catch (err) {
          expect(err).toBeInstanceOf(UsageError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('has help for every command, naming the required --reason', () => {
    expect(HELP.main).toMatch(/kubectl chaperone deny NAME --reason TEXT/);
    expect(HELP.deny).toMatch(/Required/);
    expect(Object.keys(HELP).sort()).toEqual(['approve', 'deny', 'describe', 'main', 'requests']);
  });
});

describe('watch and describe flags', () => {
  it.each([
    [['approve', 'r1', '-w'], /only applies to requests/],
    [['approve', 'r1', '--collector', 'https://c'], /only applies to describe/],
    [['requests', '--collector', 'https://c'], /does not take --collector/],
    [['describe'], /needs the name/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });
});
