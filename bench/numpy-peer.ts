// The benchmark's peer: Debian's numpy (OpenBLAS underneath) timing the same products in a
// long-lived child process, so each shape is timed by both sides back to back under the same load.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import type { GemmShape } from "./shapes.js";

export interface PeerInfo {
  numpy: string;
  /** The BLAS libraries numpy mapped (shows whether it is OpenBLAS or the reference BLAS). */
  blas: string[];
}

export interface TimingGoal {
  /** Keep timing until this much time has passed ... */
  minSeconds: number;
  /** ... and at least this many samples were taken. */
  minRuns: number;
}

// Times np.matmul(A, B, out=C) with A, B possibly transposed views, which numpy hands to cblas_sgemm
// with the matching transpose flags: the same operation as our sgemm(transA, transB, ...).
const PROGRAM = String.raw`
import json, sys, time
try:
    import numpy as np
except Exception as e:
    print(json.dumps({"error": "numpy is not importable: %s" % e}), flush=True)
    sys.exit(0)
with open("/proc/self/maps") as f:
    blas = sorted({l.split()[-1] for l in f if "blas" in l.lower() and "/" in l})
print(json.dumps({"numpy": np.__version__, "blas": blas}), flush=True)
key, A, B, C = None, None, None, None
for line in sys.stdin:
    q = json.loads(line)
    ta, tb, M, N, K = q["transA"], q["transB"], q["M"], q["N"], q["K"]
    if key != (ta, tb, M, N, K):  # operands are kept while the same shape is asked again
        key, A, B, C = None, None, None, None
        rng = np.random.default_rng(0)
        a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
        A = a.T if ta else a
        B = b.T if tb else b
        C = np.empty((M, N), np.float32)
        key = (ta, tb, M, N, K)
    t = time.perf_counter(); np.matmul(A, B, out=C); once = time.perf_counter() - t
    inner = max(1, int(1e-3 / max(once, 1e-7)))
    best, runs, start = float("inf"), 0, time.perf_counter()
    while runs < q["minRuns"] or time.perf_counter() - start < q["minSeconds"]:
        t = time.perf_counter()
        for _ in range(inner):
            np.matmul(A, B, out=C)
        best = min(best, (time.perf_counter() - t) / inner)
        runs += 1
    print(json.dumps({"seconds": best}), flush=True)
`;

export class NumpyPeer {
  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    private readonly lines: AsyncIterator<string>,
    readonly info: PeerInfo,
  ) {}

  /** Starts /usr/bin/python3 with numpy; resolves to the reason instead when that is not possible. */
  static async start(python = "/usr/bin/python3"): Promise<NumpyPeer | { reason: string }> {
    // OpenBLAS tuning overrides from the environment would handicap or misdescribe the peer.
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const child = spawn(python, ["-c", PROGRAM], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const spawnError = new Promise<string>((resolve) => child.on("error", (e) => resolve(e.message)));
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next().then((r) => (r.done ? null : r.value)), spawnError]);
    const hello = parseLine(first);
    if (!hello || typeof hello.numpy !== "string") {
      child.kill();
      const why = typeof hello?.error === "string" ? hello.error : (first ?? "") || stderr.trim();
      return { reason: `${python} with numpy is unavailable: ${why || "no answer"}` };
    }
    return new NumpyPeer(child, lines, { numpy: hello.numpy, blas: hello.blas as string[] });
  }

  /** Best seconds per product for the shape. */
  async time(shape: GemmShape, goal: TimingGoal): Promise<number> {
    const { transA, transB, M, N, K } = shape;
    this.child.stdin.write(JSON.stringify({ transA, transB, M, N, K, ...goal }) + "\n");
    const r = await this.lines.next();
    const answer = parseLine(r.done ? null : r.value);
    if (!answer || typeof answer.seconds !== "number") throw new Error(`numpy peer failed on ${shape.name}`);
    return answer.seconds;
  }

  close(): void {
    this.child.stdin.end();
  }
}

function parseLine(line: string | null): Record<string, unknown> | null {
  if (!line) return null;
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
}
