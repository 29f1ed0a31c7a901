/**
 * Just enough PromQL lexing to find the metric names an expression reads (for the check that
 * the dashboard and the alert rules only use metrics the proxy exports) and the label matchers
 * of each selector (for the check that every panel honours $instance).
 */

/** Words that are never metric names here: operators, modifiers and aggregations. */
const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
  'sum',
  'min',
  'max',
  'avg',
  'group',
  'stddev',
  'stdvar',
  'count',
  'count_values',
  'bottomk',
  'topk',
  'quantile',
]);

/** Keywords followed by a parenthesised list of label names. */
const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);

/** One vector selector: the metric name and the text between its braces ('' when none). */
export interface Selector {
  readonly metric: string;
  readonly matchers: string;
}

/**
 * Every vector selector of `expr`, in order. Function names, keywords, label names of grouping
 * clauses, numbers, durations and string literals are not selectors.
 */
export function selectors(expr: string): Selector[] {
  const found: Selector[] = [];
  // Strings first, so that nothing inside quotes is read as a name; braces and brackets keep
  // their positions so each selector's matchers can be read back from the original text.
  const masked = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, (s) =>
    '_'.repeat(s.length),
  );
  const token =
    /(\d+(?:\.\d+)?(?:e[+-]?\d+)?[a-z]*)|([a-zA-Z_:][a-zA-Z0-9_:]*)|(\{[^}]*\})|(\[[^\]]*\])|(\()/gy;
  let previousWasGrouping = false;
  let i = 0;
  while (i < masked.length) {
    token.lastIndex = i;
    const m = token.exec(masked);
    if (m === null) {
      i++;
      continue;
    }
    i = token.lastIndex;
    const [, , name, braces] = m;
    if (braces !== undefined) {
      // A selector with only matchers, e.g. {__name__="x"}: not used in this project.
      previousWasGrouping = false;
      continue;
    }
    if (m[5] !== undefined && previousWasGrouping) {
      // Skip the label list of by/without/on/ignoring/group_left/group_right.
      const close = masked.indexOf(')', i);
      i = close < 0 ? masked.length : close + 1;
      previousWasGrouping = false;
      continue;
    }
    previousWasGrouping = false;
    if (name === undefined) continue;
    const word = name.toLowerCase();
    if (GROUPING.has(word)) {
      previousWasGrouping = true;
      continue;
    }
    if (KEYWORDS.has(word)) continue;
    const rest = masked.slice(i);
    if (/^\s*\(/.test(rest)) continue; // a function call
    const matcherText = /^\s*\{([^}]*)\}/.exec(rest);
    const start = matcherText === null ? -1 : i + rest.indexOf('{') + 1;
    found.push({
      metric: name,
      matchers:
        matcherText === null ? '' : expr.slice(start, start + (matcherText[1] ?? '').length),
    });
  }
  return found;
}

/** The distinct metric names `expr` reads. */
export function metricNames(expr: string): string[] {
  return [...new Set(selectors(expr).map((s) => s.metric))];
}

/**
 * Metric names a text-format scrape exposes (sample names, so a histogram contributes
 * _bucket, _sum and _count).
 */
export function exportedNames(scrape: string): Set<string> {
  const names = new Set<string>();
  for (const line of scrape.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/.exec(line);
    if (m?.[1] !== undefined) names.add(m[1]);
  }
  return names;
}

/** One sample of a text-format scrape. */
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Every sample of a text-format scrape (comments skipped, label values unescaped). */
export function exportedSamples(scrape: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of scrape.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1] as string] = (pair[2] as string).replace(/\\(.)/g, (_, c: string) =>
        c === 'n' ? '\n' : c,
      );
    }
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return samples;
}
