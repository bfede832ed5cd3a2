import { describe, expect, it } from 'vitest';
import { operationShapeProblem } from './operation-shape.js';
import { kube, pg, sshExec, sshForward } from './test-fixtures.js';

describe('operationShapeProblem', () => {
  it.each([
    pg(['read'], ['public.x']),
    sshExec('ls'),
    sshForward('a:1'),
    { type: 'ssh', operation: 'shell', risks: [] },
    kube('get', 'pods', { namespace: 'x' }),
  ])('accepts %j', (op) => {
    expect(operationShapeProblem(op)).toBeUndefined();
  });
  it.each([
    [null, /not an object/],
    ['SELECT 1', /not an object/],
    [{ type: 'ftp', risks: [] }, /type "ftp" is unknown/],
    [{ type: 'postgres', classes: 'read', tables: [], risks: [] }, /classes/],
    [{ type: 'postgres', classes: ['read'], tables: [1], risks: [] }, /tables/],
    [{ type: 'postgres', classes: ['read'], tables: [], risks: 'none' }, /risks/],
    [{ type: 'ssh', operation: 1, risks: [] }, /operation is not a string/],
    [{ type: 'ssh', operation: 'exec', command: ['ls'], risks: [] }, /command or target/],
    [{ type: 'kubernetes', verb: 'get', resource: 'pods', risks: [] }, /verb, apiGroup or resource/],
    [
      { type: 'kubernetes', verb: 'get', apiGroup: '', resource: 'pods', namespace: 1, risks: [] },
      /subresource, namespace or name/,
    ],
  ])('rejects %j', (op, message) => {
    expect(operationShapeProblem(op)).toMatch(message);
  });
});
