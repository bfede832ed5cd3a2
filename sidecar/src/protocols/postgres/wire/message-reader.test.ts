import fc from 'fast-check';
import { serialize } from 'pg-protocol';
import { describe, expect, it } from 'vitest';
import { MessageReader, ProtocolError } from './message-reader.js';

describe('MessageReader', () => {
  it('frames startup, SSL, GSSENC and cancel packets', () => {
    const r = new MessageReader(1024);
    const ssl = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
    const gss = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    r.push(
      Buffer.concat([
        ssl,
        gss,
        serialize.startup({ user: 'agent', database: 'orders', application_name: 'x' }),
        serialize.cancel(42, 7),
      ]),
    );
    expect(r.nextStartup()).toEqual({ kind: 'ssl-request' });
    expect(r.nextStartup()).toEqual({ kind: 'gssenc-request' });
    const s = r.nextStartup();
    expect(s?.kind).toBe('startup');
    expect(s?.kind === 'startup' && Object.fromEntries(s.params)).toMatchObject({
      user: 'agent',
      database: 'orders',
      application_name: 'x',
    });
    const c = r.nextStartup();
    expect(c?.kind === 'cancel' && [c.processId, c.secretKey.readInt32BE(0)]).toEqual([42, 7]);
    expect(r.nextStartup()).toBeUndefined();
  });

  it('reassembles messages split at every byte boundary', () => {
    const bytes = Buffer.concat([
      serialize.query('SELECT 1'),
      serialize.parse({ name: 's', text: 'SELECT $1' }),
      serialize.sync(),
    ]);
    for (let cut = 1; cut < bytes.length; cut++) {
      const r = new MessageReader(1024);
      const types: string[] = [];
      for (const part of [bytes.subarray(0, cut), bytes.subarray(cut)]) {
        r.push(part);
        for (let f = r.next(); f; f = r.next()) types.push(String.fromCharCode(f.type));
      }
      expect(types).toEqual(['Q', 'P', 'S']);
    }
  });

  it('refuses an oversized message from its header, before buffering it', () => {
    const r = new MessageReader(1000);
    const header = Buffer.from([0x51, 0, 0x10, 0, 0]); // Q, 1 MiB
    r.push(header);
    expect(() => r.next()).toThrow(ProtocolError);
    expect(() => r.next()).toThrow(/exceeds the gateway limit/);
  });

  it('refuses bad lengths and unknown protocol versions with a protocol error', () => {
    const bad = new MessageReader(1000);
    bad.push(Buffer.from([0x51, 0, 0, 0, 2]));
    expect(() => bad.next()).toThrow(/invalid message length/);
    const v2 = new MessageReader(1000);
    v2.push(Buffer.from([0, 0, 0, 8, 0, 2, 0, 0]));
    expect(() => v2.nextStartup()).toThrow(/unsupported frontend protocol 2\.0/);
    const huge = new MessageReader(1000);
    huge.push(Buffer.from([0, 1, 0, 0, 0, 3, 0, 0]));
    expect(() => huge.nextStartup()).toThrow(/invalid startup packet length/);
  });

  it('never throws anything but ProtocolError and never yields more bytes than it got (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }),
        fc.boolean(),
        (chunks, startup) => {
          const r = new MessageReader(256);
          let out = 0;
          let total = 0;
          try {
            for (const c of chunks) {
              r.push(Buffer.from(c));
              total += c.length;
              if (startup) r.nextStartup();
              for (let f = r.next(); f; f = r.next()) out += f.raw.length;
            }
          } catch (err) {
            expect(err).toBeInstanceOf(ProtocolError);
          }
          expect(out).toBeLessThanOrEqual(total);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
