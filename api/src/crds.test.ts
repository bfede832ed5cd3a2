import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  API_GROUP,
  API_GROUP_VERSION,
  API_VERSION,
  applyDefaults,
  type CustomResourceDefinition,
  crdDirectory,
  crdManifestPaths,
  crdSchema,
  isChaperoneKind,
  type JSONSchemaProps,
  KINDS,
  loadCrdManifests,
  RESOURCES,
} from './crds.js';
import type { AccessPolicy, Connection } from './generated/crds.js';
import { validateAgainstSchema } from './schema-validate.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const examplesDir = path.join(repoRoot, 'examples');
const invalidDir = path.join(examplesDir, 'invalid');
const crds = loadCrdManifests();

function crdFor(kind: string): CustomResourceDefinition {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  if (!crd) throw new Error(`no CRD for ${kind}`);
  return crd;
}

interface YamlDoc {
  file: string;
  source: string;
  value: Record<string, unknown>;
}

function readYamlDocs(dir: string): YamlDoc[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .flatMap((name) => {
      const source = readFileSync(path.join(dir, name), 'utf8');
      return parseAllDocuments(source).map((doc) => {
        const problems = [...doc.errors, ...doc.warnings].map((e) => e.message);
        if (problems.length > 0) throw new Error(`${name}: ${problems.join('; ')}`);
        return { file: name, source, value: doc.toJS() as Record<string, unknown> };
      });
    });
}

interface SchemaNode {
  path: string;
  node: JSONSchemaProps;
  /** Set for object properties: the field is named in its parent's properties. */
  isProperty: boolean;
}

function* schemaNodes(node: JSONSchemaProps, nodePath = '', isProperty = false): Generator<SchemaNode> {
  yield { path: nodePath || '<root>', node, isProperty };
  for (const [name, child] of Object.entries(node.properties ?? {})) {
    yield* schemaNodes(child, nodePath ? `${nodePath}.${name}` : name, true);
  }
  if (node.items) yield* schemaNodes(node.items, `${nodePath}[]`, false);
  if (typeof node.additionalProperties === 'object') {
    yield* schemaNodes(node.additionalProperties, `${nodePath}{}`, false);
  }
}

/** Resolves a printer column / selectable field JSONPath like .status.conditions[?(@.type=="Ready")].status. */
function resolveJsonPath(schema: JSONSchemaProps, jsonPath: string): JSONSchemaProps | undefined {
  let node: JSONSchemaProps | undefined = schema;
  const segments = jsonPath
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/^\./, '')
    .split('.');
  for (const raw of segments) {
    const name = raw.replace(/\[\]$/, '');
    node = node?.properties?.[name];
    if (node && raw !== name) node = node.items;
  }
  return node;
}

describe('CRD manifests', () => {
  it('are the three Chaperone kinds, found relative to the module', () => {
    expect(crdDirectory()).toBe(path.join(repoRoot, 'crds/'));
    expect(crdManifestPaths().map((p) => path.basename(p))).toEqual(
      KINDS.map((kind) => RESOURCES[kind].file).sort(),
    );
    expect(crds.map((c) => c.spec.names.kind).sort()).toEqual([...KINDS].sort());
  });

  it('honours CHAPERONE_CRD_DIR', () => {
    const previous = process.env.CHAPERONE_CRD_DIR;
    process.env.CHAPERONE_CRD_DIR = examplesDir;
    try {
      expect(crdDirectory()).toBe(examplesDir);
    } finally {
      if (previous === undefined) delete process.env.CHAPERONE_CRD_DIR;
      else process.env.CHAPERONE_CRD_DIR = previous;
    }
  });

  it.each(KINDS)('%s matches the names exported by the api package', (kind) => {
    const crd = crdFor(kind);
    const names = RESOURCES[kind];
    expect(crd.metadata.name).toBe(names.crdName);
    expect(crd.spec.group).toBe(API_GROUP);
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.names).toEqual({
      kind,
      listKind: names.listKind,
      plural: names.plural,
      singular: names.singular,
      shortNames: [...names.shortNames],
      categories: ['chaperone'],
    });
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([[API_VERSION, true, true]]);
    expect(crd.spec.versions[0]?.subresources).toEqual({ status: {} });
  });

  it.each(KINDS)('%s schema is structural, documented and bounded', (kind) => {
    const problems: string[] = [];
    for (const { path: p, node, isProperty } of schemaNodes(crdSchema(crdFor(kind)))) {
      const isRootMetadata = p === 'metadata';
      const preserve = node['x-kubernetes-preserve-unknown-fields'] === true;
      if (!node.type && !node['x-kubernetes-int-or-string'] && !preserve) problems.push(`${p}: no type`);
      if (isProperty && !isRootMetadata && !node.description?.trim()) problems.push(`${p}: no description`);
      if (
        node.type === 'object' &&
        !isRootMetadata &&
        !node.properties &&
        !node.additionalProperties &&
        !preserve
      ) {
        problems.push(`${p}: object without properties or x-kubernetes-preserve-unknown-fields`);
      }
      if (node.type === 'object' && node.items) problems.push(`${p}: object with items`);
      if (
        node.type === 'string' &&
        node.maxLength === undefined &&
        !node.enum &&
        node.format !== 'date-time'
      ) {
        problems.push(`${p}: string without maxLength`);
      }
      if (node.type === 'array' && (node.maxItems === undefined || !node.items)) {
        problems.push(`${p}: array without maxItems or items`);
      }
      if (
        node.type === 'object' &&
        typeof node.additionalProperties === 'object' &&
        node.maxProperties === undefined
      ) {
        problems.push(`${p}: map without maxProperties`);
      }
      for (const rule of node['x-kubernetes-validations'] ?? []) {
        if (!rule.rule.trim() || !rule.message?.trim()) problems.push(`${p}: CEL rule without a message`);
      }
      if (node['x-kubernetes-list-type'] === 'map') {
        const keys = node['x-kubernetes-list-map-keys'] ?? [];
        if (keys.length === 0) problems.push(`${p}: list-type map without list-map-keys`);
        for (const key of keys) {
          if (!node.items?.required?.includes(key)) problems.push(`${p}: map key ${key} is not required`);
        }
      }
      if (node.default !== undefined) {
        for (const v of validateAgainstSchema(node, node.default)) {
          problems.push(`${p}: default is invalid at ${v.path}: ${v.message}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it.each(KINDS)('%s status has conditions keyed on type and observedGeneration', (kind) => {
    const status = crdSchema(crdFor(kind)).properties?.status;
    const conditions = status?.properties?.conditions;
    expect(conditions?.['x-kubernetes-list-type']).toBe('map');
    expect(conditions?.['x-kubernetes-list-map-keys']).toEqual(['type']);
    expect(conditions?.items?.required?.slice().sort()).toEqual(
      ['lastTransitionTime', 'message', 'reason', 'status', 'type'].sort(),
    );
    expect(status?.properties?.observedGeneration?.type).toBe('integer');
  });

  it.each(KINDS)('%s printer columns and selectable fields point at schema fields', (kind) => {
    const crd = crdFor(kind);
    const schema = crdSchema(crd);
    const version = crd.spec.versions[0];
    const paths = [
      ...(version?.additionalPrinterColumns ?? []).map((c) => c.jsonPath),
      ...(version?.selectableFields ?? []).map((f) => f.jsonPath),
    ].filter((p) => p !== '.metadata.creationTimestamp');
    expect(paths.length).toBeGreaterThan(0);
    for (const p of paths) expect(resolveJsonPath(schema, p), p).toBeDefined();
  });
});

describe('examples/', () => {
  const docs = readYamlDocs(examplesDir);

  it('cover every kind and every Connection type', () => {
    const kinds = new Set(docs.map((d) => d.value.kind));
    for (const kind of KINDS) expect(kinds).toContain(kind);
    const types = docs
      .filter((d) => d.value.kind === 'Connection')
      .map((d) => (d.value as unknown as Connection).spec.type);
    expect(new Set(types)).toEqual(new Set(['postgres', 'ssh', 'kubernetes']));
  });

  it.each(docs.map((d) => [d.file, d] as const))(
    '%s has a known kind and apiVersion, and no namespace',
    (_file, doc) => {
      const { apiVersion, kind, metadata } = doc.value as {
        apiVersion: string;
        kind: string;
        metadata?: { name?: string; namespace?: string };
      };
      expect(metadata?.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(metadata?.namespace, 'examples must work with kubectl apply -n NAMESPACE').toBeUndefined();
      if (isChaperoneKind(kind)) {
        expect(apiVersion).toBe(API_GROUP_VERSION);
        expect(crdFor(kind).spec.versions.map((v) => `${API_GROUP}/${v.name}`)).toContain(apiVersion);
      } else {
        expect([apiVersion, kind]).toEqual(['v1', 'Secret']);
      }
    },
  );

  it.each(docs.filter((d) => isChaperoneKind(d.value.kind)).map((d) => [d.file, d] as const))(
    '%s satisfies the OpenAPI part of its CRD schema',
    (_file, doc) => {
      expect(validateAgainstSchema(crdSchema(crdFor(String(doc.value.kind))), doc.value)).toEqual([]);
    },
  );

  it('get the API server defaults applied from the CRD schemas', () => {
    const find = (name: string) =>
      docs.find((d) => (d.value.metadata as { name: string }).name === name)?.value;
    const db = applyDefaults(find('orders-db') as unknown as Connection, crds);
    expect(db.spec.credentials.postgres).toMatchObject({
      ttl: '15m',
      usernamePrefix: 'chaperone_',
      adminSecretRef: { name: 'orders-db-admin', usernameKey: 'username', passwordKey: 'password' },
    });
    expect(db.spec.endpoint.tls?.mode).toBe('disable');

    const policy = applyDefaults(find('orders-agents') as unknown as AccessPolicy, crds);
    expect(policy.spec.guardrails).toHaveLength(13);
    expect(policy.spec.guardrails).toContainEqual({ detector: 'file-access', action: 'deny' });
    expect(policy.spec.masking?.kubernetes).toEqual({ secretData: 'redact' });
    expect(policy.spec.masking?.columns?.[1]).toEqual({ column: 'public.customers.ssn', strategy: 'redact' });
    expect(policy.spec.recording).toEqual({ enabled: true, results: 'counts', sampleRows: 0 });
    expect(policy.spec.approval).toEqual({ approvers: { groups: ['dba'] }, required: 1, timeout: '10m' });

    // The input is not modified, and explicit values (even []) win over defaults.
    expect((find('orders-agents') as unknown as AccessPolicy).spec.guardrails).toBeUndefined();
    const noGuardrails = { ...(find('orders-agents') as unknown as AccessPolicy) };
    noGuardrails.spec = { ...noGuardrails.spec, guardrails: [] };
    expect(applyDefaults(noGuardrails, crds).spec.guardrails).toEqual([]);
  });
});

describe('examples/invalid/', () => {
  const docs = readYamlDocs(invalidDir);

  it.each(docs.map((d) => [d.file, d] as const))(
    '%s is a Chaperone object that states the expected error',
    (_file, doc) => {
      expect(isChaperoneKind(doc.value.kind)).toBe(true);
      expect(doc.value.apiVersion).toBe(API_GROUP_VERSION);
      expect(doc.source).toMatch(/^# expected-error: \S.*$/m);
    },
  );

  it('listen-port-80.yaml is refused by the OpenAPI schema alone', () => {
    const doc = docs.find((d) => d.file === 'listen-port-80.yaml');
    expect(validateAgainstSchema(crdSchema(crdFor('Connection')), doc?.value)).toEqual([
      { path: 'spec.listen.port', message: 'must be >= 1024' },
    ]);
  });
});

describe('validateAgainstSchema', () => {
  const schema = crdSchema(crdFor('AccessPolicy'));
  const policy = (spec: Record<string, unknown>) => ({
    apiVersion: API_GROUP_VERSION,
    kind: 'AccessPolicy',
    metadata: { name: 'p' },
    spec: {
      subjects: [{ kind: 'ServiceAccount', name: 'a' }],
      connections: { names: ['db'] },
      rules: [{ name: 'r', action: 'allow' }],
      ...spec,
    },
  });

  it('reports unknown fields, bad enums, duplicates of list-map keys and missing fields', () => {
    expect(validateAgainstSchema(schema, policy({}))).toEqual([]);
    expect(validateAgainstSchema(schema, policy({ rule: [] }))).toEqual([
      { path: 'spec.rule', message: 'unknown field' },
    ]);
    expect(
      validateAgainstSchema(
        schema,
        policy({
          rules: [
            { name: 'r', action: 'allow' },
            { name: 'r', action: 'maybe' },
          ],
        }),
      ).map((v) => v.path),
    ).toEqual(['spec.rules[1]', 'spec.rules[1].action']);
    expect(validateAgainstSchema(schema, policy({ subjects: [{ kind: 'Group' }] }))).toEqual([
      { path: 'spec.subjects[0].name', message: 'required' },
    ]);
  });
});

describe('docs/crd-reference.md', () => {
  const doc = readFileSync(path.join(repoRoot, 'docs', 'crd-reference.md'), 'utf8');

  it.each(KINDS)('documents every %s field, its short name and plural', (kind) => {
    const missing: string[] = [];
    for (const { path: p, isProperty } of schemaNodes(crdSchema(crdFor(kind)))) {
      const field = p.replace(/\[\]$/, '');
      if (!isProperty || ['apiVersion', 'kind', 'metadata'].includes(field)) continue;
      if (field.startsWith('status.conditions[]')) continue; // the shared Condition section
      if (!doc.includes(`\`${field}\``)) missing.push(field);
    }
    expect(missing).toEqual([]);
    for (const name of [RESOURCES[kind].plural, ...RESOURCES[kind].shortNames])
      expect(doc).toContain(`\`${name}\``);
  });

  it('shows the approver command', () => {
    expect(doc).toContain(
      '--subresource=status --type=merge \\\n  -p \'{"status":{"decision":{"verdict":"Approved"',
    );
  });
});
