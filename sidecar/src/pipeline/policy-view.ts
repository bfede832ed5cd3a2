import type { Identity } from '../identity/identity.js';

/**
 * Builds a protocol's policy view for one authenticated identity (what the session consults per
 * operation), or says why this identity may not use the Connection at all.
 */
export type PolicyViewFactory<View> = (identity: Identity) => View | { refused: string };
