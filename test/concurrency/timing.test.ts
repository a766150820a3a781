import { describe, expect, it } from 'vitest';
import { Deadlines } from '../../src/concurrency/deadlines.ts';
import { FakeClock } from '../../src/concurrency/fake-clock.ts';
import { systemClock } from '../../src/concurrency/clock.ts';

describe('FakeClock', () => {
  it('fires due timers in deadline order, each seeing its own deadline as now', () => {
    const clock = new FakeClock(1000);
    const seen: Array<[string, number]> = [];
    clock.setTimeout(() => seen.push(['b', clock.now()]), 20);
    clock.setTimeout(() => seen.push(['a', clock.now()]), 10);
    clock.setTimeout(() => seen.push(['c', clock.now()]), 20);
    clock.setTimeout(() => seen.push(['late', clock.now()]), 100);
    clock.advance(50);
    expect(seen).toEqual([
      ['a', 1010],
      ['b', 1020],
      ['c', 1020],
    ]);
    expect(clock.now()).toBe(1050);
    expect(clock.pending()).toBe(1);
  });

  it('runs timers scheduled by a firing timer when they fall inside the advance', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    clock.setTimeout(() => {
      seen.push(clock.now());
      clock.setTimeout(() => seen.push(clock.now()), 5);
    }, 5);
    clock.advance(10);
    expect(seen).toEqual([5, 10]);
  });

  it('jump() moves time without firing; the overdue timers fire late at the next advance, seeing the late time', () => {
    const clock = new FakeClock(0);
    const seen: number[] = [];
    clock.setTimeout(() => seen.push(clock.now()), 10);
    clock.setTimeout(() => seen.push(clock.now()), 30);
    clock.jump(20);
    expect(seen).toEqual([]);
    expect(clock.now()).toBe(20);
    clock.advance(0);
    expect(seen).toEqual([20]);
    clock.advance(15);
    expect(seen).toEqual([20, 30]);
  });

  it('clears timers', () => {
    const clock = new FakeClock(0);
    let fired = false;
    const h = clock.setTimeout(() => (fired = true), 5);
    clock.clearTimeout(h);
    clock.advance(10);
    expect(fired).toBe(false);
    expect(clock.pending()).toBe(0);
  });
});

describe('Deadlines', () => {
  it('runs callbacks in deadline order, ties in scheduling order, on one clock timer', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    const seen: string[] = [];
    d.add(30, () => seen.push('30'));
    d.add(10, () => seen.push('10a'));
    d.add(20, () => seen.push('20'));
    d.add(10, () => seen.push('10b'));
    expect(clock.pending()).toBe(1);
    expect(d.size).toBe(4);
    clock.advance(25);
    expect(seen).toEqual(['10a', '10b', '20']);
    expect(clock.pending()).toBe(1);
    clock.advance(5);
    expect(seen).toEqual(['10a', '10b', '20', '30']);
    expect(clock.pending()).toBe(0);
    expect(d.size).toBe(0);
  });

  it('cancels any entry, twice harmlessly, and drops the timer when nothing is left', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    const seen: number[] = [];
    const handles = [50, 10, 40, 20, 30].map((at) => d.add(at, () => seen.push(at)));
    d.cancel(handles[1]);
    d.cancel(handles[1]);
    d.cancel(handles[2]);
    clock.advance(100);
    expect(seen).toEqual([20, 30, 50]);
    const h = d.add(200, () => seen.push(200));
    d.cancel(h);
    expect(clock.pending()).toBe(0);
  });

  it('keeps heap order through many random adds and cancels', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    const fired: number[] = [];
    let x = 12345;
    const rnd = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x / 2 ** 31;
    };
    const live: Array<{ at: number; h: ReturnType<Deadlines['add']> }> = [];
    for (let i = 0; i < 2000; i++) {
      const at = Math.floor(rnd() * 10_000);
      live.push({ at, h: d.add(at, () => fired.push(at)) });
      if (rnd() < 0.3) {
        const victim = live.splice(Math.floor(rnd() * live.length), 1)[0]!;
        d.cancel(victim.h);
      }
    }
    clock.advance(10_000);
    expect(fired).toEqual(live.map((l) => l.at).sort((a, b) => a - b));
  });

  it('re-arms a deadline further away than one timer can wait', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    let fired = false;
    d.add(3 * 2 ** 31, () => (fired = true));
    clock.advance(2 ** 31);
    expect(fired).toBe(false);
    expect(clock.pending()).toBe(1);
    clock.advance(2 * 2 ** 31);
    expect(fired).toBe(true);
  });

  it('re-arms after a callback throws', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    let later = false;
    d.add(1, () => {
      throw new Error('boom');
    });
    d.add(5, () => (later = true));
    expect(() => clock.advance(2)).toThrow('boom');
    clock.advance(5);
    expect(later).toBe(true);
  });

  it('runDue() runs what is already due without waiting for the timer, which then re-arms for the rest', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    const seen: string[] = [];
    d.add(10, () => seen.push('10'));
    d.add(20, () => seen.push('20'));
    d.add(50, () => seen.push('50'));
    clock.jump(25);
    d.runDue();
    expect(seen).toEqual(['10', '20']);
    expect(clock.pending()).toBe(1);
    clock.advance(25);
    expect(seen).toEqual(['10', '20', '50']);
    expect(clock.pending()).toBe(0);
  });

  it('close() drops every deadline', () => {
    const clock = new FakeClock(0);
    const d = new Deadlines(clock);
    d.add(5, () => {
      throw new Error('must not run');
    });
    d.close();
    expect(clock.pending()).toBe(0);
    clock.advance(10);
  });
});

describe('systemClock', () => {
  it('tells epoch time and its timers can be cleared', () => {
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1000);
    const h = systemClock.setTimeout(() => {
      throw new Error('cleared timer ran');
    }, 1);
    systemClock.clearTimeout(h);
  });
});
