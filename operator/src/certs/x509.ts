// The one place @peculiar/x509 is imported: its dependency injection (tsyringe) needs the Reflect
// metadata polyfill loaded first, and the crypto provider must be set before it signs anything.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
