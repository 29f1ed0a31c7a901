/** Reads one sample from a Prometheus text exposition (the proxy's admin /metrics). */

export async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return res.text();
}

/** The value of the first sample of `name` whose labels contain every given pair. */
export function metricValue(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const matchesLabels = Object.entries(labels).every(([k, v]) => rest.includes(`${k}="${v}"`));
    if (!matchesLabels) continue;
    const value = Number(rest.slice(rest.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) return value;
  }
  return null;
}
