import { describe, expect, it } from 'vitest';
import {
  LAST_APPLIED_ANNOTATION,
  REDACTED,
  REDACTED_DATA,
  redactSecretDocument,
  redactSecretJson,
} from './secret-redaction.js';

const PASSWORD = Buffer.from('hunter2').toString('base64');

// biome-ignore lint/suspicious/noExplicitAny: test documents are shaped freely per case
type Doc = Record<string, any>;

function secret(extra: Doc = {}): Doc {
  return {
    kind: 'Secret',
    apiVersion: 'v1',
    metadata: { name: 's', namespace: 'n', labels: { a: 'b' } },
    type: 'Opaque',
    data: { password: PASSWORD, user: Buffer.from('admin').toString('base64') },
    ...extra,
  };
}

function leaks(doc: unknown): boolean {
  const s = JSON.stringify(doc);
  return s.includes(PASSWORD) || s.includes('hunter2');
}

describe('redactSecretDocument', () => {
  it('redacts data and stringData of a Secret, keeping keys and metadata', () => {
    const doc = secret({ stringData: { token: 'hunter2' } });
    const count = redactSecretDocument(doc);
    expect(doc.data).toEqual({ password: REDACTED_DATA, user: REDACTED_DATA });
    expect(doc.stringData).toEqual({ token: REDACTED });
    expect(doc.metadata).toEqual({ name: 's', namespace: 'n', labels: { a: 'b' } });
    expect(count.values).toBe(3);
    expect(Buffer.from(REDACTED_DATA, 'base64').toString()).toBe(REDACTED);
  });

  it('redacts items of a typed list whose items carry no kind', () => {
    const { kind: _k, apiVersion: _a, ...item } = secret();
    const doc = { kind: 'SecretList', apiVersion: 'v1', metadata: { continue: 'x' }, items: [item, item] };
    redactSecretDocument(doc);
    expect(leaks(doc)).toBe(false);
    expect(doc.metadata).toEqual({ continue: 'x' });
  });

  it('redacts watch events, including Table-format ones', () => {
    const event = { type: 'ADDED', object: secret() };
    redactSecretDocument(event);
    expect(leaks(event)).toBe(false);
    const tableEvent = {
      type: 'MODIFIED',
      object: {
        kind: 'Table',
        apiVersion: 'meta.k8s.io/v1',
        metadata: {},
        columnDefinitions: [{ name: 'Name' }],
        rows: [{ cells: ['s'], object: secret() }],
      },
    };
    redactSecretDocument(tableEvent);
    expect(leaks(tableEvent)).toBe(false);
    expect(tableEvent.object.rows[0]!.cells).toEqual(['s']);
  });

  it('redacts the last-applied annotation, in full objects and PartialObjectMetadata', () => {
    const applied = JSON.stringify(secret({ stringData: { more: 'hunter2' } }));
    const pom = {
      kind: 'PartialObjectMetadataList',
      apiVersion: 'meta.k8s.io/v1',
      metadata: {},
      items: [
        {
          kind: 'PartialObjectMetadata',
          apiVersion: 'meta.k8s.io/v1',
          metadata: { name: 's', annotations: { [LAST_APPLIED_ANNOTATION]: applied, other: 'kept' } },
        },
      ],
    };
    redactSecretDocument(pom);
    expect(leaks(pom)).toBe(false);
    const ann = pom.items[0]!.metadata.annotations;
    expect(ann.other).toBe('kept');
    const reparsed = JSON.parse(ann[LAST_APPLIED_ANNOTATION]!) as { data: object; metadata: object };
    expect(reparsed.data).toEqual({ password: REDACTED_DATA, user: REDACTED_DATA });
    expect(reparsed.metadata).toEqual({ name: 's', namespace: 'n', labels: { a: 'b' } });
  });

  it('replaces an unparsable or non-object last-applied annotation whole', () => {
    for (const bad of [`{"data":{"p":"${PASSWORD}"`, `"${PASSWORD}"`, 42]) {
      const doc = secret({ metadata: { name: 's', annotations: { [LAST_APPLIED_ANNOTATION]: bad } } });
      redactSecretDocument(doc);
      expect(doc.metadata.annotations[LAST_APPLIED_ANNOTATION]).toBe(REDACTED);
    }
  });

  it('fails closed on malformed data fields', () => {
    const doc = secret({ data: PASSWORD, stringData: [PASSWORD] });
    redactSecretDocument(doc);
    expect(doc.data).toEqual({});
    expect(doc.stringData).toEqual({});
  });

  it('redacts a Secret identified only by kind, at any depth', () => {
    const doc = { kind: 'List', items: [{ nested: { kind: 'Secret', data: { p: PASSWORD } } }] };
    redactSecretDocument(doc);
    expect(leaks(doc)).toBe(false);
  });

  it('leaves a Status untouched', () => {
    const status = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'secrets "x" not found',
      reason: 'NotFound',
      details: { name: 'x', kind: 'secrets' },
      code: 404,
    };
    const copy = structuredClone(status);
    expect(redactSecretDocument(status).values).toBe(0);
    expect(status).toEqual(copy);
  });
});

describe('revealSecret', () => {
  it('passes through only the Secrets policy reveals, in lists, tables and watch events', () => {
    const helm = secret({
      type: 'helm.sh/release.v1',
      metadata: { name: 'sh.helm.release.v1.demo.v1', labels: { owner: 'helm' } },
    });
    const list = { kind: 'SecretList', metadata: {}, items: [helm, secret()] };
    const seen: unknown[] = [];
    const count = redactSecretDocument(list, (s) => {
      seen.push(s);
      return s.type === 'helm.sh/release.v1';
    });
    expect(count).toEqual({ values: 2, revealed: 1 });
    expect(list.items[0]!.data.password).toBe(PASSWORD);
    expect(list.items[1]!.data.password).toBe(REDACTED_DATA);
    expect(seen[0]).toEqual({
      namespace: '',
      name: 'sh.helm.release.v1.demo.v1',
      type: 'helm.sh/release.v1',
      labels: { owner: 'helm' },
    });
  });
});

describe('redactSecretJson', () => {
  it('round-trips text and throws on invalid JSON', () => {
    const { text, count } = redactSecretJson(JSON.stringify(secret()));
    expect(text).not.toContain(PASSWORD);
    expect(count.values).toBe(2);
    expect(() => redactSecretJson('{"data":')).toThrow();
  });
});
