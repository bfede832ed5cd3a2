/**
 * What the analysis knows about functions by name alone. Names are matched on their last segment
 * (`pg_catalog.pg_read_file` and `pg_read_file` alike, and a user's `public.pg_read_file` too: the
 * careful reading when a schema might shadow or wrap a built-in).
 */
import {
  PG_CATALOG_AGGREGATE_NAMES,
  PG_CATALOG_FUNCTION_NAMES,
  PG_CATALOG_WINDOW_FUNCTION_NAMES,
} from './generated/pg-catalog-functions.js';
import type { OperationClass } from './types.js';

function words(list: string): Set<string> {
  return new Set(list.split(/\s+/).filter((w) => w.length > 0));
}

/** Server-side file, program and network access (guardrail `file-access`). */
const FILE_ACCESS_FUNCTIONS = words(`
  pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file pg_ls_logdir pg_ls_waldir pg_ls_tmpdir
  pg_ls_archive_statusdir pg_ls_logicalsnapdir pg_ls_logicalmapdir pg_ls_replslotdir pg_ls_summariesdir
  lo_import lo_export
  pg_file_write pg_file_rename pg_file_unlink pg_file_sync pg_logdir_ls
`);

/** Built-ins that run SQL passed as a string: the tables they read are invisible to the analysis. */
const DYNAMIC_SQL_FUNCTIONS = words(`
  query_to_xml query_to_xmlschema query_to_xml_and_xmlschema
  table_to_xml table_to_xmlschema table_to_xml_and_xmlschema
  cursor_to_xml cursor_to_xmlschema
  schema_to_xml schema_to_xmlschema schema_to_xml_and_xmlschema
  database_to_xml database_to_xmlschema database_to_xml_and_xmlschema
  ts_stat
`);

/** Built-ins with side effects, and the class those effects add to the statement calling them. */
const FUNCTION_CLASSES: ReadonlyMap<string, OperationClass> = new Map<string, OperationClass>([
  ...[...words('nextval setval lo_create lo_creat lo_unlink lo_put lo_from_bytea pg_notify')].map(
    (n) => [n, 'write'] as const,
  ),
  ...[
    ...words(`
      pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_switch_wal
      pg_create_restore_point pg_promote pg_backup_start pg_backup_stop pg_start_backup pg_stop_backup
      pg_create_physical_replication_slot pg_create_logical_replication_slot pg_drop_replication_slot
      pg_copy_physical_replication_slot pg_copy_logical_replication_slot pg_replication_slot_advance
      pg_logical_slot_get_changes pg_logical_slot_get_binary_changes pg_logical_emit_message
      pg_replication_origin_create pg_replication_origin_drop pg_replication_origin_session_setup
      pg_replication_origin_advance pg_wal_replay_pause pg_wal_replay_resume pg_log_backend_memory_contexts
      pg_stat_reset pg_stat_reset_shared pg_stat_reset_single_table_counters
      pg_stat_reset_single_function_counters pg_stat_reset_slru pg_stat_reset_replication_slot
      pg_stat_reset_subscription_stats pg_import_system_collations pg_sync_replication_slots
    `),
    ...FILE_ACCESS_FUNCTIONS,
    ...DYNAMIC_SQL_FUNCTIONS,
  ].map((n) => [n, 'admin'] as const),
  ...[
    ...words(`
      pg_advisory_lock pg_advisory_lock_shared pg_advisory_unlock pg_advisory_unlock_shared
      pg_advisory_unlock_all pg_advisory_xact_lock pg_advisory_xact_lock_shared pg_try_advisory_lock
      pg_try_advisory_lock_shared pg_try_advisory_xact_lock pg_try_advisory_xact_lock_shared setseed
    `),
  ].map((n) => [n, 'session'] as const),
]);

const BUILTIN_FUNCTIONS = words(PG_CATALOG_FUNCTION_NAMES);

// Aggregates added after the release the generated list was taken from.
const AGGREGATES = words(`${PG_CATALOG_AGGREGATE_NAMES}
  any_value json_agg_strict jsonb_agg_strict json_object_agg_strict json_object_agg_unique
  json_object_agg_unique_strict jsonb_object_agg_strict jsonb_object_agg_unique jsonb_object_agg_unique_strict
`);

const WINDOW_FUNCTIONS = words(PG_CATALOG_WINDOW_FUNCTION_NAMES);

/** Aggregates that return every input value (so one output row can still hold a whole table). */
const COLLECTING_AGGREGATES = words(`
  array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg xmlagg range_agg
  json_agg_strict jsonb_agg_strict json_object_agg_strict json_object_agg_unique
  json_object_agg_unique_strict jsonb_object_agg_strict jsonb_object_agg_unique jsonb_object_agg_unique_strict
`);

export function baseName(name: string): string {
  const dot = name.lastIndexOf('.');
  return dot < 0 ? name : name.slice(dot + 1);
}

export function isFileAccessFunction(name: string): boolean {
  const base = baseName(name);
  return FILE_ACCESS_FUNCTIONS.has(base) || base.startsWith('dblink');
}

export function isDynamicSqlFunction(name: string): boolean {
  return DYNAMIC_SQL_FUNCTIONS.has(baseName(name));
}

/** The class a call adds to its statement, if the function has a known side effect. */
export function functionClass(name: string): OperationClass | undefined {
  const base = baseName(name);
  if (base.startsWith('dblink')) return 'admin';
  return FUNCTION_CLASSES.get(base);
}

/**
 * True for a call that resolves to a pg_catalog built-in: unqualified (pg_catalog is searched first
 * unless a session moves it, which is why SET search_path is an admin operation) or qualified with
 * pg_catalog, and named like a built-in.
 */
export function isBuiltinFunction(parts: readonly string[]): boolean {
  const name = parts[parts.length - 1];
  if (name === undefined) return false;
  if (parts.length === 2 && parts[0]?.toLowerCase() !== 'pg_catalog') return false;
  if (parts.length > 2) return false;
  return BUILTIN_FUNCTIONS.has(name.toLowerCase()) || AGGREGATES.has(name.toLowerCase());
}

export function isAggregateName(name: string): boolean {
  return AGGREGATES.has(baseName(name));
}

export function isWindowFunctionName(name: string): boolean {
  return WINDOW_FUNCTIONS.has(baseName(name));
}

export function isCollectingAggregate(name: string): boolean {
  return COLLECTING_AGGREGATES.has(baseName(name));
}
