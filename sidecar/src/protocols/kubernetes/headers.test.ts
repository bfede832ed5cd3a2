import { describe, expect, it } from 'vitest';
import { checkAgentHeaders, downstreamHeaders, jsonOnlyAccept, upstreamHeaders } from './headers.js';
import { recordedBody } from './request-body.js';
import { REDACTED } from './secret-redaction.js';
import { kubeStatus, rawStatusResponse } from './status.js';

describe('checkAgentHeaders', () => {
  it('accepts no credentials and a bearer token', () => {
    expect(checkAgentHeaders({})).toEqual({ ok: true });
    expect(checkAgentHeaders({ authorization: 'Bearer abc.def.ghi' })).toEqual({
      ok: true,
      bearer: 'abc.def.ghi',
    });
    expect(checkAgentHeaders({ authorization: 'bearer   x ' })).toEqual({ ok: true, bearer: 'x' });
  });
  it.each([
    [{ 'impersonate-user': 'system:admin' }, 403],
    [{ 'impersonate-group': 'system:masters' }, 403],
    [{ 'impersonate-uid': '1' }, 403],
    [{ 'impersonate-extra-scopes': 'x' }, 403],
    [{ authorization: 'Basic YWRtaW46YWRtaW4=' }, 401],
    [{ authorization: 'Bearer a b' }, 401],
    [{ authorization: 'Bearer' }, 401],
  ])('refuses %o', (headers, code) => {
    const r = checkAgentHeaders(headers);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.code).toBe(code);
  });
});

describe('upstreamHeaders', () => {
  it('replaces credentials, drops hop-by-hop and spoofable headers', () => {
    const out = upstreamHeaders(
      {
        authorization: 'Bearer agent-oidc',
        cookie: 'a=b',
        host: 'evil',
        connection: 'keep-alive, x-secret-hop',
        'x-secret-hop': '1',
        'x-remote-user': 'admin',
        'x-remote-group': 'system:masters',
        'x-forwarded-for': '1.2.3.4',
        'proxy-authorization': 'x',
        'transfer-encoding': 'chunked',
        'user-agent': 'kubectl/v1.37',
        accept: 'application/json',
        'content-type': 'application/json',
      },
      { token: 'gw-token', inspect: false, bodyLength: 12 },
    );
    expect(out).toEqual({
      authorization: 'Bearer gw-token',
      'user-agent': 'kubectl/v1.37',
      accept: 'application/json',
      'content-type': 'application/json',
      'content-length': '12',
    });
  });
  it('forces JSON, uncompressed, when the response must be inspected', () => {
    const out = upstreamHeaders(
      { accept: 'application/vnd.kubernetes.protobuf, */*', 'accept-encoding': 'gzip, br' },
      { token: 't', inspect: true },
    );
    expect(out.accept).toBe('application/json');
    expect(out['accept-encoding']).toBe('identity');
  });
});

describe('jsonOnlyAccept', () => {
  it.each([
    [undefined, 'application/json'],
    ['', 'application/json'],
    ['*/*', 'application/json'],
    ['application/json', 'application/json'],
    ['application/cbor', 'application/json'],
    ['application/yaml', 'application/json'],
    [
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
      'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json',
    ],
    [
      'application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1; q=0.9',
      'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json',
    ],
  ])('%s -> %s', (accept, expected) => {
    expect(jsonOnlyAccept(accept)).toBe(expected);
  });
});

describe('downstreamHeaders', () => {
  it('drops hop-by-hop, and length/encoding of rewritten bodies', () => {
    const h = {
      'content-type': 'application/json',
      'content-length': '10',
      'content-encoding': 'gzip',
      connection: 'close',
      'audit-id': 'x',
    };
    expect(downstreamHeaders(h, false)).toEqual({
      'content-type': 'application/json',
      'content-length': '10',
      'content-encoding': 'gzip',
      'audit-id': 'x',
    });
    expect(downstreamHeaders(h, true)).toEqual({ 'content-type': 'application/json', 'audit-id': 'x' });
  });
});

describe('recordedBody', () => {
  const secretJson = JSON.stringify({ kind: 'Secret', metadata: { name: 's' }, data: { p: 'aHVudGVyMg==' } });
  it('redacts Secret writes: objects, merge patches, JSON patches, YAML apply patches', () => {
    expect(recordedBody(Buffer.from(secretJson), 'application/json', true)).not.toContain('aHVudGVyMg==');
    expect(
      recordedBody(Buffer.from('{"stringData":{"p":"hunter2"}}'), 'application/merge-patch+json', true),
    ).toBe(`{"stringData":{"p":"${REDACTED}"}}`);
    expect(
      recordedBody(
        Buffer.from('[{"op":"add","path":"/data/p","value":"aHVudGVyMg=="}]'),
        'application/json-patch+json',
        true,
      ),
    ).toBe(`[{"op":"add","path":"/data/p","value":"${REDACTED}"}]`);
    const yaml = 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  p: hunter2\n';
    const rec = recordedBody(Buffer.from(yaml), 'application/apply-patch+yaml', true);
    expect(rec).toContain('"name":"s"');
    expect(rec).not.toContain('hunter2');
  });
  it('keeps other writes, drops binary, oversized and unparsable bodies', () => {
    expect(recordedBody(Buffer.from('{"data":{"a":"b"}}'), 'application/json', false)).toBe(
      '{"data":{"a":"b"}}',
    );
    expect(
      recordedBody(Buffer.from([0x6b, 0x38, 0x73, 0]), 'application/vnd.kubernetes.protobuf', false),
    ).toBe(undefined);
    expect(recordedBody(Buffer.alloc(70_000, 0x20), 'application/json', false)).toBe(undefined);
    expect(recordedBody(Buffer.from('{"data":'), 'application/json', true)).toBe(undefined);
    expect(recordedBody(Buffer.alloc(0), 'application/json', true)).toBe(undefined);
  });
});

describe('Status', () => {
  it('code matches the reason kubectl expects', () => {
    expect(kubeStatus(403, 'no')).toMatchObject({
      kind: 'Status',
      code: 403,
      reason: 'Forbidden',
      status: 'Failure',
    });
    expect(kubeStatus(502, 'x').reason).toBe('InternalError');
    const raw = rawStatusResponse(400, 'bad');
    expect(raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(JSON.parse(raw.split('\r\n\r\n')[1]!)).toMatchObject({ code: 400, message: 'bad' });
  });
});
