// Checks a value against the OpenAPI part of a CRD schema: types, required fields, unknown fields,
// enums, bounds, patterns, formats and list-map keys. CEL rules (x-kubernetes-validations) are NOT
// evaluated; only a real API server does that. Used where no API server is involved: the sidecar's
// standalone mode, and tests that keep examples/ in step with crds/.
import type { JSONSchemaProps } from './crds.js';

export interface SchemaViolation {
  /** Field path in kubectl style, e.g. spec.rules[0].name. */
  path: string;
  message: string;
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

const FORMATS: Record<string, (value: string) => boolean> = {
  'k8s-short-name': (v) => v.length <= 63 && DNS_LABEL.test(v),
  'k8s-long-name': (v) => v.length <= 253 && DNS_SUBDOMAIN.test(v),
  byte: (v) => BASE64.test(v),
  'date-time': (v) => DATE_TIME.test(v) && !Number.isNaN(Date.parse(v)),
};

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function matchesType(expected: string, actual: string): boolean {
  return expected === actual || (expected === 'number' && actual === 'integer');
}

function walk(schema: JSONSchemaProps, value: unknown, path: string, out: SchemaViolation[]): void {
  const at = (message: string) => out.push({ path: path || '<root>', message });
  const actual = typeOf(value);
  if (schema.type && !matchesType(schema.type, actual)) {
    at(`must be of type ${schema.type}, got ${actual}`);
    return;
  }
  if (schema.enum && !schema.enum.some((allowed) => allowed === value)) {
    at(
      `unsupported value ${JSON.stringify(value)}: must be one of ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}`,
    );
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) at(`must be >= ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) at(`must be <= ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (schema.minLength !== undefined && length < schema.minLength)
      at(`must be at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && length > schema.maxLength)
      at(`must be at most ${schema.maxLength} characters`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern).test(value))
      at(`must match ${schema.pattern}`);
    const format = schema.format ? FORMATS[schema.format] : undefined;
    if (format && !format(value)) at(`must be a valid ${schema.format}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems)
      at(`must have at least ${schema.minItems} items`);
    if (schema.maxItems !== undefined && value.length > schema.maxItems)
      at(`must have at most ${schema.maxItems} items`);
    const listType = schema['x-kubernetes-list-type'];
    if (listType === 'set' || listType === 'map') {
      const keys = schema['x-kubernetes-list-map-keys'] ?? [];
      const seen = new Set<string>();
      value.forEach((item, index) => {
        const key =
          listType === 'map' && typeOf(item) === 'object'
            ? JSON.stringify(keys.map((k) => (item as Record<string, unknown>)[k]))
            : JSON.stringify(item);
        if (seen.has(key)) out.push({ path: `${path}[${index}]`, message: `duplicate entry ${key}` });
        seen.add(key);
      });
    }
    const items = schema.items;
    if (items) {
      for (const [index, item] of value.entries()) walk(items, item, `${path}[${index}]`, out);
    }
  }
  if (actual === 'object') {
    const object = value as Record<string, unknown>;
    const properties = schema.properties;
    const additional = schema.additionalProperties;
    for (const name of schema.required ?? []) {
      if (object[name] === undefined)
        out.push({ path: path ? `${path}.${name}` : name, message: 'required' });
    }
    if (schema.maxProperties !== undefined && Object.keys(object).length > schema.maxProperties) {
      at(`must have at most ${schema.maxProperties} properties`);
    }
    // No properties and no additionalProperties: an opaque object (e.g. metadata); not ours to check.
    const opaque = !properties && additional === undefined;
    for (const [name, child] of Object.entries(object)) {
      const childPath = path ? `${path}.${name}` : name;
      const childSchema = properties?.[name];
      if (childSchema) walk(childSchema, child, childPath, out);
      else if (typeof additional === 'object') walk(additional, child, childPath, out);
      else if (!opaque && additional !== true && !schema['x-kubernetes-preserve-unknown-fields']) {
        out.push({ path: childPath, message: 'unknown field' });
      }
    }
  }
}

/** Violations of the schema's OpenAPI constraints (not its CEL rules); empty when valid. */
export function validateAgainstSchema(schema: JSONSchemaProps, value: unknown): SchemaViolation[] {
  const out: SchemaViolation[] = [];
  walk(schema, value, '', out);
  return out;
}
