import { readdir, readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import {
  type AccessPolicy,
  applyDefaults,
  type Connection,
  crdSchema,
  loadCrdManifests,
  validateAgainstSchema,
} from '@chaperone/api';
import { parseAllDocuments } from 'yaml';

/** A Kubernetes Secret as written in YAML: `data` is base64, `stringData` plain. */
interface SecretDoc {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export interface StandaloneConfig {
  connections: Connection[];
  policies: AccessPolicy[];
  /** Secret name → decoded key/value pairs. Never logged. */
  secrets: Map<string, Record<string, string>>;
}

export class ConfigError extends Error {}

/**
 * Reads every YAML document in dir (Connection, AccessPolicy, Secret — the same schemas as in the
 * cluster), validates Chaperone objects against the CRD schemas and applies their defaults, as the
 * API server would. Errors name the file, the document and the field.
 */
export async function loadStandaloneConfig(dir: string, namespace = 'default'): Promise<StandaloneConfig> {
  const crds = loadCrdManifests();
  const schemaFor = (kind: string) => {
    const crd = crds.find((c) => c.spec.names.kind === kind);
    return crd ? crdSchema(crd) : undefined;
  };
  const out: StandaloneConfig = { connections: [], policies: [], secrets: new Map() };
  const problems: string[] = [];
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => ['.yaml', '.yml'].includes(extname(f))).sort();
  } catch (err) {
    throw new ConfigError(`cannot read config folder ${dir}: ${(err as Error).message}`);
  }
  for (const file of files) {
    const docs = parseAllDocuments(await readFile(join(dir, file), 'utf8'));
    docs.forEach((doc, i) => {
      const where = `${file}${docs.length > 1 ? ` (document ${i + 1})` : ''}`;
      if (doc.errors.length) {
        problems.push(`${where}: invalid YAML: ${doc.errors[0]?.message}`);
        return;
      }
      const obj = doc.toJS() as {
        kind?: string;
        apiVersion?: string;
        metadata?: { name?: string; namespace?: string };
      } | null;
      if (!obj) return;
      // Standalone mode has one namespace; objects from other namespaces would never apply.
      if (obj.metadata?.namespace && obj.metadata.namespace !== namespace) {
        problems.push(
          `${where}: ${obj.kind} ${obj.metadata.name} is in namespace ${obj.metadata.namespace}, expected ${namespace}`,
        );
        return;
      }
      if (obj.kind === 'Secret') {
        const s = obj as SecretDoc;
        const values: Record<string, string> = { ...s.stringData };
        for (const [k, v] of Object.entries(s.data ?? {}))
          values[k] = Buffer.from(v, 'base64').toString('utf8');
        out.secrets.set(s.metadata.name, values);
        return;
      }
      if (obj.kind !== 'Connection' && obj.kind !== 'AccessPolicy') return; // AccessRequests etc. are runtime objects
      const schema = schemaFor(obj.kind);
      const violations = schema ? validateAgainstSchema(schema, obj) : [];
      if (violations.length) {
        for (const v of violations)
          problems.push(`${where}: ${obj.kind} ${obj.metadata?.name ?? '?'}: ${v.path}: ${v.message}`);
        return;
      }
      const withDefaults = applyDefaults({ ...obj, metadata: { ...obj.metadata, namespace } }, crds);
      if (obj.kind === 'Connection') out.connections.push(withDefaults as Connection);
      else out.policies.push(withDefaults as AccessPolicy);
    });
  }
  if (problems.length) throw new ConfigError(`invalid configuration in ${dir}:\n  ${problems.join('\n  ')}`);
  return out;
}
