/**
 * Which operation classes each top-level statement node belongs to. The table is the whole contract;
 * `statementClasses` only refines the few nodes whose class depends on their fields. A node that is
 * not in the table (a new PostgreSQL release, a PL/pgSQL-only node) is 'admin': fail closed.
 */
import { type NodeOf, nodeAs, tagOf } from '../pg-ast.js';
import type { OperationClass } from '../types.js';

const READ: readonly OperationClass[] = ['read'];
const WRITE: readonly OperationClass[] = ['write'];
const DDL: readonly OperationClass[] = ['ddl'];
const ADMIN: readonly OperationClass[] = ['admin'];
const SESSION: readonly OperationClass[] = ['session'];
const DDL_WRITE: readonly OperationClass[] = ['ddl', 'write'];

export const STATEMENT_CLASSES: Readonly<Record<string, readonly OperationClass[]>> = {
  // read: queries and things that only look
  SelectStmt: READ, // SELECT, VALUES, TABLE; … FOR UPDATE too. SELECT … INTO: ddl + write (refined)
  VariableShowStmt: READ, // SHOW
  ExplainStmt: READ, // plain EXPLAIN; EXPLAIN ANALYZE takes the classes of the statement it runs
  ListenStmt: READ,
  FetchStmt: READ, // FETCH and MOVE

  // write: data changes
  InsertStmt: WRITE, // + read when it reads other relations or has RETURNING (refined in classify)
  UpdateStmt: WRITE,
  DeleteStmt: WRITE,
  MergeStmt: WRITE,
  TruncateStmt: WRITE,
  NotifyStmt: WRITE,
  RefreshMatViewStmt: WRITE,
  LockStmt: WRITE, // LOCK TABLE: stronger modes need write privileges and block writers

  // ddl: schema objects
  CreateStmt: DDL,
  CreateSchemaStmt: DDL,
  AlterTableStmt: DDL,
  AlterTableMoveAllStmt: DDL,
  AlterDomainStmt: DDL,
  AlterCollationStmt: DDL,
  CreateExtensionStmt: DDL,
  AlterExtensionStmt: DDL,
  AlterExtensionContentsStmt: DDL,
  CreateForeignTableStmt: DDL,
  ImportForeignSchemaStmt: DDL,
  CreateTrigStmt: DDL,
  CreateSeqStmt: DDL,
  AlterSeqStmt: DDL,
  DefineStmt: DDL, // CREATE AGGREGATE / OPERATOR / TYPE / COLLATION / TEXT SEARCH …
  CreateDomainStmt: DDL,
  CreateOpClassStmt: DDL,
  CreateOpFamilyStmt: DDL,
  AlterOpFamilyStmt: DDL,
  DropStmt: DDL, // admin for roles-and-privileges-like objects (refined)
  CommentStmt: DDL,
  IndexStmt: DDL,
  CreateStatsStmt: DDL,
  AlterStatsStmt: DDL,
  CreateFunctionStmt: DDL,
  AlterFunctionStmt: DDL,
  RenameStmt: DDL, // admin for roles, databases, tablespaces … (refined)
  AlterObjectDependsStmt: DDL,
  AlterObjectSchemaStmt: DDL,
  AlterOperatorStmt: DDL,
  AlterTypeStmt: DDL,
  RuleStmt: DDL,
  CompositeTypeStmt: DDL,
  CreateEnumStmt: DDL,
  CreateRangeStmt: DDL,
  AlterEnumStmt: DDL,
  ViewStmt: DDL,
  CreateConversionStmt: DDL,
  CreateCastStmt: DDL,
  CreateTransformStmt: DDL,
  AlterTSDictionaryStmt: DDL,
  AlterTSConfigurationStmt: DDL,
  CreateTableAsStmt: DDL_WRITE, // CREATE TABLE AS, CREATE MATERIALIZED VIEW, SELECT INTO

  // admin: roles, privileges, the server, code execution, cluster-wide objects
  GrantStmt: ADMIN,
  GrantRoleStmt: ADMIN,
  AlterDefaultPrivilegesStmt: ADMIN,
  CreateRoleStmt: ADMIN,
  AlterRoleStmt: ADMIN,
  AlterRoleSetStmt: ADMIN,
  DropRoleStmt: ADMIN,
  DropOwnedStmt: ADMIN,
  ReassignOwnedStmt: ADMIN,
  AlterOwnerStmt: ADMIN, // ownership is a privilege
  CreatePolicyStmt: ADMIN, // row-level security policies are privileges
  AlterPolicyStmt: ADMIN,
  SecLabelStmt: ADMIN,
  AlterSystemStmt: ADMIN,
  VacuumStmt: ADMIN, // VACUUM and ANALYZE
  ClusterStmt: ADMIN,
  ReindexStmt: ADMIN,
  CheckPointStmt: ADMIN,
  LoadStmt: ADMIN,
  DoStmt: ADMIN, // anonymous code blocks: their body is a string the analysis cannot see into
  CallStmt: ADMIN, // procedures can commit, change roles and run anything
  CreatedbStmt: ADMIN,
  AlterDatabaseStmt: ADMIN,
  AlterDatabaseRefreshCollStmt: ADMIN,
  AlterDatabaseSetStmt: ADMIN,
  DropdbStmt: ADMIN,
  CreateTableSpaceStmt: ADMIN,
  DropTableSpaceStmt: ADMIN,
  AlterTableSpaceOptionsStmt: ADMIN,
  CreateFdwStmt: ADMIN,
  AlterFdwStmt: ADMIN,
  CreateForeignServerStmt: ADMIN,
  AlterForeignServerStmt: ADMIN,
  CreateUserMappingStmt: ADMIN, // holds remote credentials
  AlterUserMappingStmt: ADMIN,
  DropUserMappingStmt: ADMIN,
  CreatePublicationStmt: ADMIN,
  AlterPublicationStmt: ADMIN,
  CreateSubscriptionStmt: ADMIN,
  AlterSubscriptionStmt: ADMIN,
  DropSubscriptionStmt: ADMIN,
  CreateEventTrigStmt: ADMIN,
  AlterEventTrigStmt: ADMIN,
  CreatePLangStmt: ADMIN,
  CreateAmStmt: ADMIN,

  // copy: COPY … TO STDOUT / FROM STDIN (+ read / write); to or from a file or PROGRAM: admin (refined)
  CopyStmt: ['copy'],

  // session: the connection's own state
  TransactionStmt: SESSION, // BEGIN, COMMIT, ROLLBACK, SAVEPOINT …; two-phase commit: admin (refined)
  VariableSetStmt: SESSION, // SET / RESET; security-relevant settings: admin (refined)
  DiscardStmt: SESSION, // DISCARD ALL resets the role and search_path: admin (refined)
  DeallocateStmt: SESSION,
  PrepareStmt: SESSION, // the statement it prepares is analysed on its own (`prepared`)
  ExecuteStmt: SESSION, // the gateway resolves the prepared statement (`executes`)
  DeclareCursorStmt: SESSION, // refined: the classes of its query
  ClosePortalStmt: SESSION,
  UnlistenStmt: SESSION,
  ConstraintsSetStmt: SESSION,
};

/**
 * Settings that change how later statements are parsed, resolved or authorised. Changing them is an
 * admin operation: search_path changes what unqualified names (and built-in functions) resolve to;
 * standard_conforming_strings, backslash_quote and client_encoding change how the server reads the
 * text this module parses (statements could be smuggled past the analysis); role and
 * session_authorization change privileges; the read-only and replication-role settings switch off
 * protections the gateway or the DBA may rely on.
 */
export const SECURITY_SETTINGS: ReadonlySet<string> = new Set([
  'role',
  'session_authorization',
  'search_path',
  'standard_conforming_strings',
  'backslash_quote',
  'client_encoding',
  'default_transaction_read_only',
  'transaction_read_only',
  'session_replication_role',
  'local_preload_libraries',
  'session_preload_libraries',
]);

/** Objects whose DROP / RENAME is about privileges or the whole cluster, hence admin. */
const ADMIN_OBJECT_TYPES: ReadonlySet<string> = new Set([
  'OBJECT_ROLE',
  'OBJECT_DATABASE',
  'OBJECT_TABLESPACE',
  'OBJECT_POLICY',
  'OBJECT_EVENT_TRIGGER',
  'OBJECT_FDW',
  'OBJECT_FOREIGN_SERVER',
  'OBJECT_USER_MAPPING',
  'OBJECT_PUBLICATION',
  'OBJECT_SUBSCRIPTION',
  'OBJECT_LANGUAGE',
  'OBJECT_ACCESS_METHOD',
]);

function copyClasses(copy: NodeOf<'CopyStmt'>): OperationClass[] {
  const data: OperationClass = copy.is_from === true ? 'write' : 'read';
  const external = copy.filename !== undefined || copy.is_program === true;
  return [external ? 'admin' : 'copy', data];
}

function setClasses(set: NodeOf<'VariableSetStmt'>): readonly OperationClass[] {
  if (set.kind === 'VAR_RESET_ALL') return ADMIN; // resets search_path among others
  const name = set.name?.toLowerCase();
  return name !== undefined && SECURITY_SETTINGS.has(name) ? ADMIN : SESSION;
}

/**
 * The classes of one statement node by its own fields. Classes that come from what it contains
 * (data-modifying CTEs, side-effect functions, EXPLAIN ANALYZE's statement) are added by classify.
 */
export function statementClasses(stmt: unknown): readonly OperationClass[] {
  const select = nodeAs(stmt, 'SelectStmt');
  if (select !== undefined) return select.intoClause !== undefined ? DDL_WRITE : READ;
  const copy = nodeAs(stmt, 'CopyStmt');
  if (copy !== undefined) return copyClasses(copy);
  const set = nodeAs(stmt, 'VariableSetStmt');
  if (set !== undefined) return setClasses(set);
  const tx = nodeAs(stmt, 'TransactionStmt');
  if (tx !== undefined) {
    const twoPhase =
      tx.kind === 'TRANS_STMT_PREPARE' ||
      tx.kind === 'TRANS_STMT_COMMIT_PREPARED' ||
      tx.kind === 'TRANS_STMT_ROLLBACK_PREPARED';
    return twoPhase ? ADMIN : SESSION;
  }
  const discard = nodeAs(stmt, 'DiscardStmt');
  if (discard !== undefined) return discard.target === 'DISCARD_ALL' ? ADMIN : SESSION;
  const drop = nodeAs(stmt, 'DropStmt');
  if (drop !== undefined)
    return drop.removeType !== undefined && ADMIN_OBJECT_TYPES.has(drop.removeType) ? ADMIN : DDL;
  const rename = nodeAs(stmt, 'RenameStmt');
  if (rename !== undefined) {
    return rename.renameType !== undefined && ADMIN_OBJECT_TYPES.has(rename.renameType) ? ADMIN : DDL;
  }
  const tag = tagOf(stmt);
  return (tag !== undefined ? STATEMENT_CLASSES[tag] : undefined) ?? ADMIN;
}
