/** Times as the proxy prints them: RFC 3339 in UTC, whole seconds when they are whole. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('.000Z', 'Z');
}
