// Headless Chromium for tests that must see a page really render. Debian's `chromium` package (or
// $CHROMIUM_PATH); when it is absent, those tests skip with CHROMIUM_MISSING. Every launch gets a fresh
// profile folder, a hard timeout, and is killed with its whole process group so nothing outlives a test.
import { spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

export const CHROMIUM_MISSING = "chromium not installed: apt-get install chromium (or set CHROMIUM_PATH)";

/** The Chromium executable to use, or undefined when none is installed. */
export function findChromium(): string | undefined {
  // $CHROMIUM_PATH first; a wrong one still falls back to the Debian package rather than skipping.
  const candidates = [process.env.CHROMIUM_PATH, "/usr/bin/chromium"].filter((p): p is string => !!p);
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not this one
    }
  }
  return undefined;
}

const BASE_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync",
  "--hide-scrollbars",
];

export interface ChromiumRun {
  stdout: string;
  stderr: string;
  code: number | null;
}

/**
 * Run Chromium on a local HTML file with extra flags; rejects (after killing it) past `timeoutMs`. The limit only
 * stops a hung browser: on the 2-core CI machine, beside the other test files, a normal run has taken 5 to 14 s.
 */
export function runChromium(
  chromium: string,
  htmlFile: string,
  flags: string[],
  timeoutMs = 60_000,
): Promise<ChromiumRun> {
  const profile = mkdtempSync(join(tmpdir(), "tuneforge-chromium-"));
  const args = [...BASE_FLAGS, `--user-data-dir=${profile}`, ...flags, pathToFileURL(htmlFile).href];
  // detached: its own process group, so the renderer and GPU helpers die with it on timeout.
  const child = spawn(chromium, args, { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  child.stderr.on("data", (b: Buffer) => err.push(b));
  const killGroup = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  return new Promise<ChromiumRun>((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      killGroup();
      reject(new Error(`chromium did not finish within ${timeoutMs} ms: ${args.join(" ")}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      killGroup(); // helpers it may have left behind
      rmSync(profile, { recursive: true, force: true });
      resolvePromise({
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code,
      });
    });
  });
}

/** The DOM after the page's scripts ran (virtual time lets timers fire without waiting in real time). */
export async function dumpDom(chromium: string, htmlFile: string, virtualTimeMs = 5000): Promise<string> {
  const run = await runChromium(chromium, htmlFile, ["--dump-dom", `--virtual-time-budget=${virtualTimeMs}`]);
  if (run.code !== 0 || run.stdout.trim() === "") {
    throw new Error(`chromium --dump-dom failed (exit ${run.code}): ${run.stderr.slice(-2000)}`);
  }
  return run.stdout;
}

/** Save a PNG screenshot of the page at the given window size. */
export async function screenshot(
  chromium: string,
  htmlFile: string,
  pngFile: string,
  width = 1280,
  height = 2400,
  virtualTimeMs = 5000,
): Promise<void> {
  const run = await runChromium(chromium, htmlFile, [
    `--screenshot=${pngFile}`,
    `--window-size=${width},${height}`,
    `--virtual-time-budget=${virtualTimeMs}`,
  ]);
  if (run.code !== 0)
    throw new Error(`chromium --screenshot failed (exit ${run.code}): ${run.stderr.slice(-2000)}`);
}
