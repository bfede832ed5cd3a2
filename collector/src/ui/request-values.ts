/**
 * The first string of a query or form field. Parsers give a string, an array for a repeated key,
 * or nothing; anything else (a JSON body's number or object) counts as absent.
 */
export function firstString(value: unknown): string | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  return typeof v === 'string' ? v : undefined;
}
