import { describe, expect, it } from 'vitest';
import {
  CONNECTIONS_ANNOTATION,
  INJECT_LABEL,
  parseConnectionsAnnotation,
  STATUS_ANNOTATION,
} from './pod-opt-in.js';

describe('pod opt-in keys', () => {
  it('live under chaperone.dev', () => {
    for (const key of [INJECT_LABEL, CONNECTIONS_ANNOTATION, STATUS_ANNOTATION])
      expect(key).toMatch(/^chaperone\.dev\//);
  });

  it('parses the connections annotation', () => {
    expect(parseConnectionsAnnotation(undefined)).toEqual([]);
    expect(parseConnectionsAnnotation('')).toEqual([]);
    expect(parseConnectionsAnnotation('orders-db,bastion')).toEqual(['orders-db', 'bastion']);
    expect(parseConnectionsAnnotation(' orders-db , ,bastion,orders-db ')).toEqual(['orders-db', 'bastion']);
  });
});
