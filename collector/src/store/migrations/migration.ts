/** One schema step. Versions are dense from 1; a step is applied once, inside a transaction. */
export interface Migration {
  version: number;
  name: string;
  /** SQL statements, run in order. */
  statements: readonly string[];
}

export function latestVersion(migrations: readonly Migration[]): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}
