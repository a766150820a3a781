// What this machine's kernel charges for the work a lock server cannot avoid, measured in the bench
// process before a run, so that the report's figures can be read against their floor: every frame
// a server writes is system calls, every scavenge that copies into fresh pages takes page faults,
// and every durable commit waits for a flush to disk. On a virtual machine each can cost many
// times what it does on bare metal, and no server's code changes that.
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { percentile } from './stats.ts';

export interface KernelCosts {
  /** One system call that does nothing (getuid), ns. */
  syscallNs: number;
  /** The first write to a page just mapped (a minor fault: the kernel finds and zeroes a page), ns. */
  pageFaultNs: number;
  /** An 8 KiB write and fdatasync in `dir`, the floor of a durable commit there: p50 and p99, µs. */
  flush?: { dir: string; p50: number; p99: number };
}

const SYSCALLS = 100_000;
/** 8,192 pages: enough that the loop's own cost is nothing beside their faults. */
const FAULT_BYTES = 32 << 20;
const PAGE = 4096;
const FLUSHES = 1_000;

function perCall(calls: number, run: () => void): number {
  const t0 = process.hrtime.bigint();
  run();
  return Number(process.hrtime.bigint() - t0) / calls;
}

function flush(dir: string): KernelCosts['flush'] {
  const tmp = mkdtempSync(join(dir, 'lockstep-flush-'));
  const fd = openSync(join(tmp, 'wal'), 'w');
  const block = Buffer.alloc(8192, 1);
  const us: number[] = [];
  try {
    for (let i = 0; i < FLUSHES; i++) {
      const t0 = process.hrtime.bigint();
      // A small file rewritten in place, as a write-ahead log's current segment is.
      writeSync(fd, block, 0, block.length, (i % 64) * block.length);
      fdatasyncSync(fd);
      us.push(Number(process.hrtime.bigint() - t0) / 1000);
    }
  } finally {
    closeSync(fd);
    rmSync(tmp, { recursive: true, force: true });
  }
  us.sort((a, b) => a - b);
  return { dir, p50: percentile(us, 0.5), p99: percentile(us, 0.99) };
}

/** Takes about half a second (the flushes, when `flushDir` is given, most of it). */
export function measureKernelCosts(flushDir?: string): KernelCosts {
  const syscallNs = perCall(SYSCALLS, () => {
    for (let i = 0; i < SYSCALLS; i++) process.getuid?.();
  });
  // allocUnsafeSlow leaves the memory untouched, so each page's first write is its fault.
  const pages = Buffer.allocUnsafeSlow(FAULT_BYTES);
  const pageFaultNs = perCall(FAULT_BYTES / PAGE, () => {
    for (let i = 0; i < FAULT_BYTES; i += PAGE) pages[i] = 1;
  });
  return { syscallNs, pageFaultNs, ...(flushDir === undefined ? {} : { flush: flush(flushDir) }) };
}

const us = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;

/** The Machine line: what the kernel charged, and why it matters to the figures below it. */
export function kernelLine(k: KernelCosts): string {
  const flushed =
    k.flush === undefined
      ? ''
      : `; an 8 KiB write and \`fdatasync\` in ${k.flush.dir} (the floor of every durable commit below) p50 ${k.flush.p50.toFixed(0)} µs, p99 ${k.flush.p99.toFixed(0)} µs`;
  return `- the kernel, measured before the run: a system call that does nothing (\`getuid\`) ${us(k.syscallNs)}, the first write to a fresh page (a minor fault) ${us(k.pageFaultNs)}${flushed}. Every system measured here pays these: each reply is at least one system call, a socket write on loopback costs far more (its delivery and the wake-up of the receiver run inside it), and a garbage collector that copies into fresh pages takes a fault per page.`;
}
