import { describe, expect, it } from 'vitest';
import {
  compileCustomPattern,
  containsCardNumber,
  containsCloudKey,
  containsEmail,
  containsJwt,
  containsNationalId,
  containsPrivateKey,
  luhnValid,
  nonPortableConstruct,
} from './value-detectors.js';

describe('luhnValid', () => {
  it.each([
    ['79927398713', true],
    ['79927398710', false],
    ['4111111111111111', true],
    ['4111111111111112', false],
    ['0', true],
    ['', false],
    ['4111 1111 1111 1111', false], // digits only
    ['abc', false],
  ])('%j → %s', (digits, expected) => {
    expect(luhnValid(digits)).toBe(expected);
  });
});

describe('credit-card', () => {
  it.each([
    '4111 1111 1111 1111',
    '4111111111111111',
    '4111-1111-1111-1111',
    'card: 4111 1111 1111 1111, exp 12/30',
    '5555 5555 5555 4444', // Mastercard
    '5105105105105100',
    '2223003122003222', // Mastercard 2-series
    '378282246310005', // Amex, 15 digits
    '3714 496353 98431', // Amex grouping 4-6-5
    '6011111111111117', // Discover
    '6011 0009 9013 9424',
    '30569309025904', // Diners, 14 digits
    '38520000023237',
    '3530111333300000', // JCB
    '6200000000000005', // UnionPay
    '4222222222222', // Visa, 13 digits
    '{"pan":"4111111111111111"}',
    'two cards 1234 4111111111111111 9', // a card among other digit groups
    'x 4111111111111111 5500000000000004 y', // two cards in one run of groups
  ])('finds %j', (text) => {
    expect(containsCardNumber(text)).toBe(true);
  });

  it.each([
    '4111 1111 1111 1112', // Luhn-failing twin of the Visa test number
    '4111111111111112',
    '5555 5555 5555 4445',
    '1234567812345670', // Luhn-valid, but no card network starts with 1
    '1700000000000', // epoch milliseconds
    '411111111111', // 12 digits
    '41111111111111111111111', // 23 digits in one group
    'abc4111111111111111', // glued to letters (ids, hashes)
    '4111111111111111abc',
    '4111--1111--1111--1111', // separators are single characters
    '4111  1111  1111  1111',
    '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1', // cards are grouped in 3 or more digits
    '+1 555-123-4567',
    '2024-01-15 12:00:00',
    '978-3-16-148410-0', // ISBN-13
    '550e8400-e29b-41d4-a716-446655440000', // UUID
    '',
    'no digits here',
  ])('ignores %j', (text) => {
    expect(containsCardNumber(text)).toBe(false);
  });
});

describe('national-id', () => {
  it.each([
    '123-45-6789',
    '123 45 6789',
    'SSN: 078-05-1120.',
    'ssn=665-12-3456',
    'AB123456C', // UK National Insurance number
    'AB 12 34 56 C',
    'nino: ce123456d'.toUpperCase(),
  ])('finds %j', (text) => {
    expect(containsNationalId(text)).toBe(true);
  });
  it.each([
    '000-12-3456', // area 000
    '666-12-3456', // area 666
    '900-12-3456', // 9xx are ITINs, not SSNs
    '999-99-9999',
    '123-00-4567', // group 00
    '123-45-0000', // serial 0000
    '123-45 6789', // mixed separators
    '123456789', // bare nine digits: too ambiguous
    '1123-45-6789',
    '123-45-67890',
    '123-45-6789-1',
    '555-123-4567', // phone
    '2024-01-15',
    'QQ123456C', // Q never appears in a NINO prefix
    'AO123456C', // O never second
    'GB123456A', // unallocated prefix
    'AB123456E', // suffix is A-D
    'XAB123456C',
    'ab123456c',
  ])('ignores %j', (text) => {
    expect(containsNationalId(text)).toBe(false);
  });
});

describe('jwt', () => {
  const header = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9'; // {"alg":"HS256","typ":"JWT"}
  const payload = 'eyJzdWIiOiIxMjM0NTY3ODkwIn0';
  const sig = 'dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
  it.each([
    `${header}.${payload}.${sig}`,
    `Authorization: Bearer ${header}.${payload}.${sig}`,
    `{"token":"${header}.${payload}.${sig}"}`,
    `eyJhbGciOiJub25lIn0.${payload}.`, // alg none, empty signature
  ])('finds %j', (text) => {
    expect(containsJwt(text)).toBe(true);
  });
  it.each([
    `eyJ0eXAiOiJKV1QifQ.${payload}.${sig}`, // header without alg
    `eyJhbGciOjV9.${payload}.${sig}`, // alg is not a string
    `eyJub3QganNvbg.${payload}.${sig}`, // header is not JSON
    `${header}.${payload}`, // two segments
    `x${header}.${payload}.${sig}`, // not at a token start
    'eyJ is how base64 of {" starts',
    'eyJ'.repeat(1000),
    '',
  ])('ignores %j', (text) => {
    expect(containsJwt(text)).toBe(false);
  });
});

describe('cloud-key', () => {
  const azureKey = 'XoHnm9Q/Uh2i9AfCO2SDtLNb8sHDEwqaU7vvDpbyKGMXoHnm9Q/Uh2i9AfCO2SDtLNb8sHDEwqaU7vvDpbyKG==';
  it.each([
    'AKIAIOSFODNN7EXAMPLE', // AWS's documented example access key id
    'aws_access_key_id = AKIAIOSFODNN7EXAMPLE',
    'ASIAIOSFODNN7EXAMPLE', // temporary (STS) key id
    'key=AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe', // GCP API key
    `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${azureKey};EndpointSuffix=core.windows.net`,
    'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey=XoHnm9Q/Uh2i9AfCO2SDtLNb8sHDEwqaU7vvDpbyKGM=',
  ])('finds %j', (text) => {
    expect(containsCloudKey(text)).toBe(true);
  });
  it.each([
    'AKIAIOSFODNN7EXAMPL', // 15 after the prefix
    'AKIAIOSFODNN7EXAMPLEX', // 17
    'XAKIAIOSFODNN7EXAMPLE',
    'akiaiosfodnn7example',
    'AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQ', // 34 after AIza
    'AccountKey=short',
    'AKIA and AIza and Key= in prose',
    '',
  ])('ignores %j', (text) => {
    expect(containsCloudKey(text)).toBe(false);
  });
});

describe('private-key', () => {
  it.each([
    '-----BEGIN RSA PRIVATE KEY-----\nMIIE...',
    '-----BEGIN PRIVATE KEY-----',
    '-----BEGIN ENCRYPTED PRIVATE KEY-----',
    '-----BEGIN EC PRIVATE KEY-----',
    '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA',
    '-----BEGIN PGP PRIVATE KEY BLOCK-----',
    '{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEv..."}',
    'PuTTY-User-Key-File-3: ssh-ed25519',
  ])('finds %j', (text) => {
    expect(containsPrivateKey(text)).toBe(true);
  });
  it.each([
    '-----BEGIN PUBLIC KEY-----',
    '-----BEGIN CERTIFICATE-----',
    '-----BEGIN OPENSSH PUBLIC KEY-----',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq user@host',
    'the PRIVATE KEY is in the vault',
    '',
  ])('ignores %j', (text) => {
    expect(containsPrivateKey(text)).toBe(false);
  });
});

describe('email', () => {
  it.each([
    'alice@example.com',
    'Contact: a.b+tag@mail.example.co.uk.',
    'Bob <bob_99@corp.io>',
    'x@y.io',
    `${'@'.repeat(100)}a@b.cd`,
  ])('finds %j', (text) => {
    expect(containsEmail(text)).toBe(true);
  });
  it.each([
    'user@localhost',
    '@example.com',
    'alice@',
    'a@b',
    'foo@bar.c',
    '@@@@',
    'alice at example dot com',
    'a@-',
    '',
  ])('ignores %j', (text) => {
    expect(containsEmail(text)).toBe(false);
  });
});

describe('adversarial input finishes (the test timeout guards against super-linear regexes)', () => {
  const big = 64 * 1024;
  it.each([
    [`${'a'.repeat(big - 1)}@`, containsEmail],
    ['a@'.repeat(big / 2), containsEmail],
    [`a@${'a.'.repeat(big / 2)}`, containsEmail],
    ['1 '.repeat(big / 2), containsCardNumber],
    ['1'.repeat(big), containsCardNumber],
    ['4111 '.repeat(big / 5), containsCardNumber],
    ['123-45-'.repeat(big / 7), containsNationalId],
    ['AB12 '.repeat(big / 5), containsNationalId],
    [`eyJ${'a'.repeat(big)}`, containsJwt],
    [`eyJhbGciOiJIUzI1NiJ9.${'a.'.repeat(big / 2)}`, containsJwt],
    ['AKIA'.repeat(big / 4), containsCloudKey],
    ['Key='.repeat(big / 4), containsCloudKey],
    ['-----BEGIN A A A A '.repeat(big / 19), containsPrivateKey],
  ] as const)('%#', (text, detector) => {
    expect(typeof detector(text)).toBe('boolean');
  });
});

describe('custom patterns', () => {
  it('compiles a valid pattern once and matches with it', () => {
    const c = compileCustomPattern('ORD-[0-9]{6}');
    if ('error' in c) throw new Error(c.error);
    expect(c.test('order ORD-123456 shipped')).toBe(true);
    expect(c.test('ORD-12345')).toBe(false);
  });
  it.each([
    ['(unclosed', /not a valid regular expression/],
    ['a{2,1}', /not a valid regular expression/],
    ['(a)\\1', /backreference/],
    ['(?<n>a)\\k<n>', /named backreference/],
    ['foo(?=bar)', /lookaround/],
    ['foo(?!bar)', /lookaround/],
    ['(?<=foo)bar', /lookaround/],
    ['(?<!foo)bar', /lookaround/],
    ['', /pattern is missing/],
    [undefined, /pattern is missing/],
    ['a'.repeat(1025), /longer than 1024/],
  ])('rejects %j', (pattern, message) => {
    const c = compileCustomPattern(pattern);
    expect('error' in c && c.error).toMatch(message);
  });
  it.each(['(?<name>x)', '[\\1]', '\\\\1', '\\d{3}-\\d{4}', '(?:a|b)+', '[(?=]'])('accepts %j', (pattern) => {
    expect(nonPortableConstruct(pattern)).toBeUndefined();
    expect('test' in compileCustomPattern(pattern)).toBe(true);
  });
});
