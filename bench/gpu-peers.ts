// The HF peers of bench:gpu: ../shared/reference/bench_peft.py and bench_generate.py run as child processes (the
// GPU machine ships them in .devkit/reference), each printing one JSON line. A peer that fails, runs out of memory
// or out of time is reported with why; it never stops our side.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

export interface PeerRun {
  script: string;
  args: string[];
  status: "ok" | "oom" | "error" | "timeout" | "unavailable" | "skipped";
  /** Its JSON line (bench_peft.py: tokens_per_s, step_ms, peak_mem_gib, ...; bench_generate.py: gen_tokens_per_s). */
  result?: Record<string, unknown>;
  note?: string;
  wallS?: number;
}

export interface PeerOptions {
  python: string;
  /** Folder holding bench_peft.py and bench_generate.py. */
  dir: string;
}

/** The last line of stdout that parses as a JSON object. */
export function lastJsonLine(stdout: string): Record<string, unknown> | null {
  const lines = stdout.split("\n").reverse();
  for (const line of lines) {
    const t = line.trim();
    if (!t.startsWith("{")) continue;
    try {
      const v: unknown = JSON.parse(t);
      if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
    } catch {
      // not the result line; keep looking
    }
  }
  return null;
}

const tail = (s: string, n = 600) => (s.length > n ? "..." + s.slice(-n) : s).trim();

/** Runs one peer script with a time limit (seconds). */
export function runPeer(o: PeerOptions, script: string, args: string[], timeoutS: number): PeerRun {
  const path = join(o.dir, script);
  if (!existsSync(path)) {
    return { script, args, status: "unavailable", note: `${path} not found (run ../shared/device/pack.sh)` };
  }
  const t0 = performance.now();
  const r = spawnSync(o.python, [path, ...args], {
    encoding: "utf8",
    timeout: Math.max(1, Math.round(timeoutS)) * 1000,
    killSignal: "SIGKILL",
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallS = Number(((performance.now() - t0) / 1e3).toFixed(1));
  const stderr = r.stderr ?? "";
  if (r.error && (r.error as NodeJS.ErrnoException).code === "ENOENT") {
    return { script, args, status: "unavailable", note: `${o.python} not found`, wallS };
  }
  if (r.signal === "SIGKILL" || (r.error && /ETIMEDOUT/.test(String(r.error)))) {
    return { script, args, status: "timeout", note: `killed after ${Math.round(timeoutS)} s`, wallS };
  }
  const result = lastJsonLine(r.stdout ?? "");
  if (r.status === 0 && result) return { script, args, status: "ok", result, wallS };
  const oom = /OutOfMemoryError|CUDA out of memory/i.test(stderr);
  return {
    script,
    args,
    status: oom ? "oom" : "error",
    note: `exit ${r.status ?? r.signal}: ${tail(stderr) || "no output"}`,
    wallS,
  };
}

/** A number field of a peer's JSON line, or null. */
export function peerNumber(run: PeerRun | undefined, key: string): number | null {
  const v = run?.status === "ok" ? run.result?.[key] : undefined;
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}
