import { describe, expect, it } from 'vitest';
import { commandGlob, commandSegments, hostGlob, isLiteralGlob, segmentGlob } from './glob.js';

describe('segmentGlob', () => {
  it.each([
    ['orders', 'orders', true],
    ['orders', 'orders2', false],
    ['orders', 'Orders', false],
    ['*', '', true],
    ['*', 'anything at all', true],
    ['order?', 'orders', true],
    ['order?', 'order', false],
    ['*_log', 'audit_log', true],
    ['a.b', 'aXb', false], // '.' is literal
    ['a+b', 'a+b', true],
    ['(x)', '(x)', true],
    ['[ab]', 'a', false], // no character classes: brackets are literal
    ['[ab]', '[ab]', true],
  ])('%s vs %s → %s', (glob, value, expected) => {
    expect(segmentGlob(glob).test(value)).toBe(expected);
  });

  it('ignores case with the i flag', () => {
    expect(segmentGlob('orders', 'i').test('ORDERS')).toBe(true);
  });

  it('knows literal globs', () => {
    expect(isLiteralGlob('orders')).toBe(true);
    expect(isLiteralGlob('order?')).toBe(false);
    expect(isLiteralGlob('*')).toBe(false);
  });
});

describe('commandGlob', () => {
  it.each([
    ['df -h', 'df -h', true],
    ['df -h', 'df -h ', false],
    ['df -h', 'df', false],
    ['systemctl status *', 'systemctl status nginx', true],
    ['systemctl status *', 'systemctl status nginx.service --no-pager', true],
    ['systemctl status *', 'systemctl restart nginx', false],
    ['systemctl status *', 'systemctl status x; rm -rf /', false],
    ['systemctl status *', 'systemctl status x && reboot', false],
    ['systemctl status *', 'systemctl status x | sh', false],
    ['systemctl status *', 'systemctl status $(id)', false],
    ['systemctl status *', 'systemctl status `id`', false],
    ['systemctl status *', 'systemctl status x > /etc/passwd', false],
    ['systemctl status *', 'systemctl status x\nreboot', false],
    ['cat /var/log/app?.log', 'cat /var/log/app1.log', true],
    ['cat /var/log/app?.log', 'cat /var/log/app;.log', false],
    ['echo a | wc -l', 'echo a | wc -l', true], // written literally, control characters match
  ])('allow %j vs %j → %s', (glob, command, expected) => {
    expect(commandGlob(glob, false).test(command)).toBe(expected);
  });

  it.each([
    ['rm *', 'rm -rf /', true],
    ['rm *', 'rm x; reboot', true],
    ['*reboot*', 'ls\nreboot', true],
    ['rm *', 'ls', false],
  ])('deny %j vs %j → %s', (glob, command, expected) => {
    expect(commandGlob(glob, true).test(command)).toBe(expected);
  });
});

describe('commandSegments', () => {
  it.each([
    ['ls -l', ['ls -l']],
    ['ls; rm -rf /', ['ls; rm -rf /', 'ls', 'rm -rf /']],
    ['a && b || c | d & e', ['a && b || c | d & e', 'a', 'b', 'c', 'd', 'e']],
    ['echo $(reboot)', ['echo $(reboot)', 'echo', 'reboot']],
    ['echo `reboot`', ['echo `reboot`', 'echo', 'reboot']],
    ['a\nb', ['a\nb', 'a', 'b']],
    ['', ['']],
  ])('%j → %j', (command, segments) => {
    expect(commandSegments(command)).toEqual(segments);
  });
});

describe('hostGlob', () => {
  it.each([
    ['db.internal', 'db.internal', false, true],
    ['db.internal', 'DB.internal', false, true],
    ['10.0.0.*', '10.0.0.7', false, true],
    ['10.0.0.*', '10.0.0.7.evil.example', false, false],
    ['10.0.0.*', '10.0.0.7.evil.example', true, true],
    ['*.internal', 'db.internal', false, true],
    ['*.internal', 'db.eu.internal', false, false],
    ['*.internal', 'db.eu.internal', true, true],
    ['db?.internal', 'db1.internal', false, true],
  ])('%s vs %s (broad %s) → %s', (glob, host, broad, expected) => {
    expect(hostGlob(glob, broad).test(host)).toBe(expected);
  });
});
