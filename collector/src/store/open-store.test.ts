import { describe, expect, it } from 'vitest';
import { describeStoreLocation, parseStoreLocation, redactUrl } from './open-store.js';

describe('store locations', () => {
  it('parses sqlite paths and postgres URLs, keeping passwords out of descriptions', () => {
    expect(parseStoreLocation('sqlite:/var/lib/c.db')).toEqual({ kind: 'sqlite', path: '/var/lib/c.db' });
    expect(parseStoreLocation('sqlite:rel.db?synchronous=normal')).toEqual({
      kind: 'sqlite',
      path: 'rel.db',
      synchronous: 'normal',
    });
    const pg = parseStoreLocation('postgresql://collector:s3cret@db:5432/audit');
    expect(pg).toEqual({ kind: 'postgres', connectionString: 'postgresql://collector:s3cret@db:5432/audit' });
    expect(describeStoreLocation(pg)).toBe('postgresql://collector:***@db:5432/audit');
    expect(redactUrl('postgres://db/audit')).toBe('postgres://db/audit');
    expect(() => parseStoreLocation('sqlite:')).toThrow(/needs a file path/);
    expect(() => parseStoreLocation('sqlite:x?synchronous=off')).toThrow(/full or normal/);
    expect(() => parseStoreLocation('mysql://u:pw@h/d')).toThrow(
      '--db must be sqlite:PATH or a postgres:// URL, got "mysql://u:***@h/d"',
    );
  });
});
