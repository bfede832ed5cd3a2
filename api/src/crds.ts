import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const API_GROUP = 'chaperone.dev';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}` as const;

export const KINDS = ['Connection', 'AccessPolicy', 'AccessRequest'] as const;
export type ChaperoneKind = (typeof KINDS)[number];

/** Names the API server knows each kind by; must match crds/*.yaml (a unit test checks). */
export interface ResourceNames {
  readonly kind: ChaperoneKind;
  readonly listKind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  /** `plural.group`, the CustomResourceDefinition's name. */
  readonly crdName: string;
  /** File name under crds/. */
  readonly file: string;
}

function names(kind: ChaperoneKind, plural: string, shortName: string): ResourceNames {
  return {
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    shortNames: [shortName],
    crdName: `${plural}.${API_GROUP}`,
    file: `${API_GROUP}_${plural}.yaml`,
  };
}

export const RESOURCES: Readonly<Record<ChaperoneKind, ResourceNames>> = {
  Connection: names('Connection', 'connections', 'conn'),
  AccessPolicy: names('AccessPolicy', 'accesspolicies', 'ap'),
  AccessRequest: names('AccessRequest', 'accessrequests', 'ar'),
};

export const PLURALS: Readonly<Record<ChaperoneKind, string>> = {
  Connection: RESOURCES.Connection.plural,
  AccessPolicy: RESOURCES.AccessPolicy.plural,
  AccessRequest: RESOURCES.AccessRequest.plural,
};

export function isChaperoneKind(kind: unknown): kind is ChaperoneKind {
  return typeof kind === 'string' && (KINDS as readonly string[]).includes(kind);
}

/** A CEL rule attached to a schema node (`x-kubernetes-validations`). */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
  fieldPath?: string;
  optionalOldSelf?: boolean;
}

/** The subset of the API server's JSONSchemaProps that our CRDs use. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  additionalProperties?: JSONSchemaProps | boolean;
  items?: JSONSchemaProps;
  required?: string[];
  enum?: unknown[];
  default?: unknown;
  format?: string;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-validations'?: ValidationRule[];
}

export interface CustomResourceColumnDefinition {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
  format?: string;
}

export interface CustomResourceDefinitionVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema: { openAPIV3Schema: JSONSchemaProps };
  subresources?: { status?: Record<string, never> };
  additionalPrinterColumns?: CustomResourceColumnDefinition[];
  selectableFields?: { jsonPath: string }[];
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames?: string[];
      categories?: string[];
    };
    scope: 'Namespaced' | 'Cluster';
    versions: CustomResourceDefinitionVersion[];
  };
}

/**
 * The crds/ folder of the repository. This module sits in api/src (sources, tests) or api/dist
 * (built), both two levels below the repository root, so one relative URL serves both.
 * CHAPERONE_CRD_DIR overrides it where the CRDs are installed elsewhere (e.g. a container image).
 */
export function crdDirectory(): string {
  const override = process.env.CHAPERONE_CRD_DIR;
  if (override) return path.resolve(override);
  return fileURLToPath(new URL('../../crds/', import.meta.url));
}

/** Absolute paths of the CRD manifests, sorted, so the order is stable. */
export function crdManifestPaths(dir: string = crdDirectory()): string[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => path.join(dir, name));
}

function assertCrd(value: unknown, file: string): asserts value is CustomResourceDefinition {
  const crd = value as Partial<CustomResourceDefinition> | null;
  if (
    crd === null ||
    typeof crd !== 'object' ||
    crd.apiVersion !== 'apiextensions.k8s.io/v1' ||
    crd.kind !== 'CustomResourceDefinition' ||
    !Array.isArray(crd.spec?.versions)
  ) {
    throw new Error(`${file} is not an apiextensions.k8s.io/v1 CustomResourceDefinition`);
  }
}

/** Parses every CRD manifest; throws if a file is not a single CustomResourceDefinition. */
export function loadCrdManifests(dir: string = crdDirectory()): CustomResourceDefinition[] {
  return crdManifestPaths(dir).map((file) => {
    const value: unknown = parse(readFileSync(file, 'utf8'));
    assertCrd(value, file);
    return value;
  });
}

/** The openAPIV3Schema of a CRD's version (default: the storage version). */
export function crdSchema(crd: CustomResourceDefinition, version?: string): JSONSchemaProps {
  const v = version
    ? crd.spec.versions.find((candidate) => candidate.name === version)
    : crd.spec.versions.find((candidate) => candidate.storage);
  if (!v) throw new Error(`${crd.metadata.name} has no version ${version ?? '(storage)'}`);
  return v.schema.openAPIV3Schema;
}

/** Condition types each kind's status uses (see the CRD descriptions). */
export const CONDITION_TYPES = {
  Connection: ['Ready', 'CredentialsValid', 'Reachable'],
  AccessPolicy: ['Ready', 'ConnectionsResolved'],
  AccessRequest: ['Notified', 'Decided'],
} as const satisfies Record<ChaperoneKind, readonly string[]>;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Fills schema defaults into value in place, as the API server does: a default applies where the
 * field is absent, and the defaulted value is then walked so nested defaults apply too. The sidecar
 * needs this in standalone mode, where objects come from YAML files and no API server defaults them.
 */
export function applySchemaDefaults(schema: JSONSchemaProps, value: unknown): void {
  if (Array.isArray(value)) {
    if (schema.items) for (const item of value) applySchemaDefaults(schema.items, item);
    return;
  }
  if (!isPlainObject(value)) return;
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    if (value[name] === undefined && child.default !== undefined)
      value[name] = structuredClone(child.default);
    if (value[name] !== undefined) applySchemaDefaults(child, value[name]);
  }
  if (isPlainObject(schema.additionalProperties)) {
    const valueSchema = schema.additionalProperties;
    for (const [name, child] of Object.entries(value)) {
      if (!schema.properties?.[name]) applySchemaDefaults(valueSchema, child);
    }
  }
}

/**
 * Returns a copy of a Chaperone object with its CRD's defaults applied. Objects of other kinds
 * (e.g. Secrets) are returned as a plain copy.
 */
export function applyDefaults<T>(object: T, crds: CustomResourceDefinition[] = loadCrdManifests()): T {
  const copy = structuredClone(object);
  if (!isPlainObject(copy)) return copy;
  const crd = crds.find(
    (candidate) =>
      candidate.spec.names.kind === copy.kind &&
      candidate.spec.versions.some((v) => `${candidate.spec.group}/${v.name}` === copy.apiVersion),
  );
  if (!crd) return copy;
  const version = String(copy.apiVersion).split('/')[1];
  applySchemaDefaults(crdSchema(crd, version), copy);
  return copy;
}
