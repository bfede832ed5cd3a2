// Wire constants of the PostgreSQL v3 protocol (https://www.postgresql.org/docs/current/protocol-message-formats.html).

export const PROTOCOL_3_0 = 196608; // 3 << 16
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** Frontend (client → server) message type bytes. */
export const Frontend = {
  Query: 0x51, // Q
  Parse: 0x50, // P
  Bind: 0x42, // B
  Describe: 0x44, // D
  Execute: 0x45, // E
  Close: 0x43, // C
  Flush: 0x48, // H
  Sync: 0x53, // S
  Terminate: 0x58, // X
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyFail: 0x66, // f
  FunctionCall: 0x46, // F
  Password: 0x70, // p (also SASLInitialResponse / SASLResponse)
} as const;

/** Backend (server → client) message type bytes. */
export const Backend = {
  Authentication: 0x52, // R
  BackendKeyData: 0x4b, // K
  BindComplete: 0x32, // 2
  CloseComplete: 0x33, // 3
  CommandComplete: 0x43, // C
  CopyData: 0x64, // d
  CopyDone: 0x63, // c
  CopyInResponse: 0x47, // G
  CopyOutResponse: 0x48, // H
  CopyBothResponse: 0x57, // W
  DataRow: 0x44, // D
  EmptyQueryResponse: 0x49, // I
  ErrorResponse: 0x45, // E
  FunctionCallResponse: 0x56, // V
  NegotiateProtocolVersion: 0x76, // v
  NoData: 0x6e, // n
  NoticeResponse: 0x4e, // N
  NotificationResponse: 0x41, // A
  ParameterDescription: 0x74, // t
  ParameterStatus: 0x53, // S
  ParseComplete: 0x31, // 1
  PortalSuspended: 0x73, // s
  ReadyForQuery: 0x5a, // Z
  RowDescription: 0x54, // T
} as const;

/** SQLSTATE codes the gateway itself raises. */
export const SqlState = {
  insufficientPrivilege: '42501',
  invalidAuthorization: '28000',
  invalidPassword: '28P01',
  protocolViolation: '08P01',
  connectionFailure: '08006',
  cannotConnectNow: '57P03',
  programLimitExceeded: '54000',
  featureNotSupported: '0A000',
  queryCanceled: '57014',
  syntaxError: '42601',
  internalError: 'XX000',
} as const;
