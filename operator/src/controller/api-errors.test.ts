import { ApiException } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { apiErrorCode, describeApiError } from './api-errors.js';

describe('describeApiError', () => {
  const status = {
    kind: 'Status',
    message: 'storage is (re)initializing',
    reason: 'TooManyRequests',
    code: 429,
  };
  it.each([
    { name: 'parsed body', body: status },
    { name: 'JSON body', body: JSON.stringify(status) },
    { name: 'JSON of a JSON string', body: JSON.stringify(JSON.stringify(status)) },
  ])('ApiException with a $name → code and Status message only', ({ body }) => {
    const err = new ApiException(429, 'Unknown API Status Code!', body, { 'x-secret-header': 'h' });
    expect(describeApiError(err)).toBe('HTTP 429: storage is (re)initializing');
    expect(apiErrorCode(err)).toBe(429);
  });

  it('a watch error (statusCode) and plain errors', () => {
    expect(describeApiError(Object.assign(new Error('Gone'), { statusCode: 410 }))).toBe('HTTP 410: Gone');
    expect(describeApiError(new Error('socket hang up'))).toBe('socket hang up');
    expect(describeApiError(new ApiException(500, 'x', 'not json', {}))).toMatch(/^HTTP 500/);
    expect(apiErrorCode(new Error('x'))).toBeUndefined();
  });
});
