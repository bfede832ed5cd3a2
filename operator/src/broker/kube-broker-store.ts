import {
  type AccessPolicy,
  type AccessRequest,
  API_GROUP,
  API_VERSION,
  type Connection,
  PLURALS,
} from '@chaperone/api';
import * as k8s from '@kubernetes/client-node';
import type { BrokerStore, StoredSecret } from './credential-broker.js';

const isNotFound = (err: unknown) => (err as { code?: number }).code === 404;

/** The broker's reads and writes, straight against the API server (no cache: decisions must be fresh). */
export class KubeBrokerStore implements BrokerStore {
  private readonly custom: k8s.CustomObjectsApi;
  private readonly core: k8s.CoreV1Api;

  constructor(kubeConfig: k8s.KubeConfig) {
    this.custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  async getConnection(namespace: string, name: string): Promise<Connection | undefined> {
    return this.get<Connection>(PLURALS.Connection, namespace, name);
  }

  async listPolicies(namespace: string): Promise<AccessPolicy[]> {
    const list = (await this.custom.listNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      namespace,
      plural: PLURALS.AccessPolicy,
    })) as { items: AccessPolicy[] };
    return list.items;
  }

  async readSecret(namespace: string, name: string): Promise<StoredSecret | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ name, namespace });
      return {
        data: Object.fromEntries(
          Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        ),
        annotations: secret.metadata?.annotations ?? {},
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async createAccessRequest(request: AccessRequest): Promise<AccessRequest> {
    return (await this.custom.createNamespacedCustomObject({
      group: API_GROUP,
      version: API_VERSION,
      namespace: request.metadata.namespace ?? 'default',
      plural: PLURALS.AccessRequest,
      body: request,
    })) as AccessRequest;
  }

  getAccessRequest(namespace: string, name: string): Promise<AccessRequest | undefined> {
    return this.get<AccessRequest>(PLURALS.AccessRequest, namespace, name);
  }

  async deleteAccessRequest(namespace: string, name: string): Promise<void> {
    try {
      await this.custom.deleteNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace,
        plural: PLURALS.AccessRequest,
        name,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async get<T>(plural: string, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        namespace,
        plural,
        name,
      })) as T;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }
}
