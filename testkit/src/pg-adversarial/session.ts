// Runs an attack's steps on one PostgreSQL session and keeps every byte the server sent, whatever
// the message type (rows, COPY data, errors, notices, parameter status, notifications). node-postgres
// logs in (SCRAM directly, trust through the gateway); then the test drives the wire itself, so it
// can send what no driver would (Bind to a name made by SQL PREPARE, Execute with a row limit).
import pg from 'pg';
import { serialize } from 'pg-protocol';

export type AttackStep =
  /** A simple Query message (may hold several statements). */
  | { sql: string }
  /** Extended-protocol messages; a Sync is appended. */
  | { extended: ExtendedMessage[] };

export type ExtendedMessage =
  | { parse: { name?: string; text: string } }
  | { bind: { statement?: string; portal?: string; binary?: boolean } }
  | { describe: { type: 'S' | 'P'; name?: string } }
  | { execute: { portal?: string; rows?: number } }
  | { close: { type: 'S' | 'P'; name?: string } };

export interface Endpoint {
  host: string;
  port: number;
  user: string;
  password?: string;
  database: string;
}

export interface SessionCapture {
  /** Everything the server sent after login, concatenated. */
  output: Buffer;
  /** Error messages seen (SQLSTATE and text), for reports. */
  errors: string[];
  /** Set when the session could not run all steps (login refused, connection closed, timeout). */
  aborted?: string;
}

const STEP_TIMEOUT_MS = 15_000;

export async function runSession(endpoint: Endpoint, steps: readonly AttackStep[]): Promise<SessionCapture> {
  const client = new pg.Client({ ...endpoint, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  const capture: SessionCapture = { output: Buffer.alloc(0), errors: [] };
  try {
    await client.connect();
  } catch (err) {
    capture.aborted = `login failed: ${err instanceof Error ? err.message : String(err)}`;
    return capture;
  }
  // From here the test owns the connection: node-postgres's own handlers would choke on messages
  // it did not ask for.
  const conn = (client as unknown as { connection: PgConnection }).connection;
  conn.removeAllListeners();
  const chunks: Buffer[] = [];
  conn.stream.on('data', (d: Buffer) => chunks.push(d));
  let ready = 0;
  let closed = false;
  conn.on('readyForQuery', () => ready++);
  conn.on('errorMessage', (e: { code?: string; message?: string }) =>
    capture.errors.push(`${e.code} ${e.message}`),
  );
  // COPY FROM STDIN gets no data from an attack: end it so the session moves on.
  conn.on('copyInResponse', () => conn.stream.write(serialize.copyFail('attack sends no COPY data')));
  conn.on('error', () => {});
  conn.stream.on('close', () => {
    closed = true;
  });
  try {
    for (const step of steps) {
      const want = ready + 1;
      conn.stream.write(encodeStep(step));
      const deadline = Date.now() + STEP_TIMEOUT_MS;
      while (ready < want && !closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      if (closed) {
        capture.aborted = 'the server closed the connection';
        break;
      }
      if (ready < want) {
        capture.aborted = `no ReadyForQuery within ${STEP_TIMEOUT_MS} ms`;
        break;
      }
    }
  } finally {
    capture.output = Buffer.concat(chunks);
    conn.stream.destroy();
  }
  return capture;
}

interface PgConnection {
  stream: import('node:net').Socket;
  on(event: string, listener: (...args: never[]) => void): void;
  removeAllListeners(): void;
}

function encodeStep(step: AttackStep): Buffer {
  if ('sql' in step) return serialize.query(step.sql);
  const out: Buffer[] = [];
  for (const m of step.extended) {
    if ('parse' in m) out.push(serialize.parse({ name: m.parse.name ?? '', text: m.parse.text, types: [] }));
    else if ('bind' in m) {
      out.push(
        serialize.bind({
          statement: m.bind.statement ?? '',
          portal: m.bind.portal ?? '',
          values: [],
          binary: m.bind.binary ?? false,
        }),
      );
    } else if ('describe' in m)
      out.push(serialize.describe({ type: m.describe.type, name: m.describe.name ?? '' }));
    else if ('execute' in m)
      out.push(serialize.execute({ portal: m.execute.portal ?? '', rows: m.execute.rows ?? 0 }));
    else out.push(serialize.close({ type: m.close.type, name: m.close.name ?? '' }));
  }
  out.push(serialize.sync());
  return Buffer.concat(out);
}
