/**
 * Long-running requests (watches, logs -f): they stream with no buffering and no timeout, are
 * ended cleanly on shutdown and stay out of the latency histogram.
 */
export function isStreamingRequest(path: string): boolean {
  const q = path.indexOf('?');
  if (q < 0) return false;
  return /(?:^|&)(?:watch=(?:true|1)|follow=true)(?:&|$)/.test(path.slice(q + 1));
}
