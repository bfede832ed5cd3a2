import { describe, expect, it } from 'vitest';
import { activityRange, DAY, HOUR, MAX_BUCKETS, renderActivityChart } from './activity-chart.js';

describe('activity chart', () => {
  const now = new Date('2030-01-15T10:30:00Z');
  it('chooses hours for short ranges, days beyond, and caps the buckets', () => {
    expect(activityRange({ now })).toMatchObject({ bucketMs: DAY, to: new Date('2030-01-16T00:00:00Z') });
    const short = activityRange({ from: new Date('2030-01-15T00:00:00Z'), to: now, now });
    expect(short.bucketMs).toBe(HOUR);
    const long = activityRange({ from: new Date('2020-01-01T00:00:00Z'), to: now, now });
    expect((long.to.getTime() - long.from.getTime()) / long.bucketMs).toBe(MAX_BUCKETS);
  });

  it('draws one bar per non-empty series and bucket, with counts a reader and a test can see', () => {
    const range = activityRange({
      from: new Date('2030-01-10T00:00:00Z'),
      to: new Date('2030-01-15T00:00:00Z'),
      now,
    });
    const day = (d: number) => Date.parse(`2030-01-1${d}T00:00:00Z`);
    const svg = renderActivityChart(range, [
      { startMs: day(0), sessions: 4, denied: 1, approved: 0 },
      { startMs: day(3), sessions: 2, denied: 0, approved: 2 },
    ]).text;
    expect(svg.match(/<rect class="bar sessions"/g)).toHaveLength(2);
    expect(svg.match(/<rect class="bar denied"/g)).toHaveLength(1);
    expect(svg.match(/<rect class="bar approved"/g)).toHaveLength(1);
    expect(svg).toContain('data-buckets="5"');
    expect(svg).toContain('aria-label="6 sessions, 1 denials, 2 approvals');
    expect(svg).toContain('<title>2030-01-13: 2 approvals</title>');
    expect(svg).not.toMatch(/<script|href=|style=/);
  });
});
