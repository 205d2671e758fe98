// Downloading a model folder from the Hugging Face Hub (or a mirror: HF_ENDPOINT) with the files tuneforge
// needs and nothing else. Downloads stream to `<file>.incomplete` and resume with an HTTP Range request
// after a cut connection, so a multi-GB pull survives flaky networks; transient errors (429/5xx) are
// retried with backoff, honouring Retry-After.
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { TuneforgeError } from "../errors.js";
import { writeJsonAtomic } from "../store/atomic.js";
import { isModelSideFile } from "./folder.js";

export interface PullProgress {
  file: string;
  /** Bytes of this file on disk so far (including a resumed part). */
  downloaded: number;
  /** The file's size, when the server said. */
  total: number | null;
  /** 0-based position of the file in the download list, and the list's length. */
  fileIndex: number;
  fileCount: number;
}

export interface PullOptions {
  /** Destination folder; default `models/<owner>--<name>`. */
  dir?: string;
  /** Branch, tag or commit; default "main". */
  revision?: string;
  /** Access token for private/gated repos; default $HF_TOKEN. Never printed. */
  token?: string;
  /** Default $HF_ENDPOINT or https://huggingface.co. */
  endpoint?: string;
  onProgress?: (p: PullProgress) => void;
  /** Retries per request after a 429/5xx/network error (default 5). */
  maxRetries?: number;
  /** First backoff delay in ms, doubled each retry (default 1000). */
  retryBaseMs?: number;
  /** Upper bound on any single wait, Retry-After included (default 60000). */
  maxRetryWaitMs?: number;
}

export interface PullResult {
  dir: string;
  /** The commit the files came from (when the Hub reported it), else the revision asked for. */
  commit: string;
  /** Files now in `dir`, in download order. */
  files: string[];
  /** Files that were already complete and not downloaded again. */
  reused: string[];
}

/** Recorded in the model folder so a run can say exactly which weights it started from. */
export const PULL_RECORD_FILE = "tuneforge-pull.json";

const OTHER_WEIGHTS = [".bin", ".pth", ".pt", ".gguf", ".onnx", ".h5", ".msgpack", ".ckpt"];

/**
 * From a repo's file list, the files tuneforge needs: config, generation config, tokenizer files and the
 * safetensors weights (+ index). Only top-level files: subfolders hold other formats (`original/`, `onnx/`).
 */
export function selectModelFiles(repoId: string, files: readonly string[]): string[] {
  const top = files.filter((f) => !f.includes("/"));
  const weights = top.filter((f) => f.endsWith(".safetensors") || f.endsWith(".safetensors.index.json"));
  if (!weights.some((f) => f.endsWith(".safetensors"))) {
    const other = files.filter((f) => OTHER_WEIGHTS.some((ext) => f.endsWith(ext)));
    throw new TuneforgeError(
      other.length > 0
        ? `${repoId} has no safetensors weights, only ${other.slice(0, 3).join(", ")}${other.length > 3 ? ", ..." : ""}`
        : `${repoId} has no model weights`,
      {
        hint:
          other.length > 0
            ? "tuneforge reads safetensors only; pick a repo that has *.safetensors (most do), or convert with " +
              "transformers: AutoModelForCausalLM.from_pretrained(...).save_pretrained(dir, safe_serialization=True)"
            : "check the repo id: it should be a transformers model such as Qwen/Qwen2.5-0.5B-Instruct",
      },
    );
  }
  if (!top.includes("config.json")) {
    throw new TuneforgeError(`${repoId} has no config.json, so it is not a transformers model folder`, {
      hint: "pick the transformers version of the model (repos with config.json and *.safetensors)",
    });
  }
  const side = top.filter((f) => isModelSideFile(f) || /^tokenizer.*\.json$/.test(f));
  return [...new Set([...side, ...weights])];
}

class RetryableError extends Error {
  constructor(
    message: string,
    readonly waitMs: number | null = null,
  ) {
    super(message);
  }
}

/** Retry-After as milliseconds (seconds or an HTTP date), or null when absent/unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (!header) return null;
  const secs = Number(header);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Ctx {
  repoId: string;
  token: string | undefined;
  maxRetries: number;
  retryBaseMs: number;
  maxRetryWaitMs: number;
}

/** Turns a non-2xx response into a retryable error (429/5xx) or a final TuneforgeError (the rest). */
function httpError(res: Response, ctx: Ctx, what: string): Error {
  if (res.status === 429 || res.status >= 500) {
    return new RetryableError(`${what}: HTTP ${res.status}`, retryAfterMs(res.headers.get("retry-after")));
  }
  if (res.status === 401 || res.status === 403) {
    return new TuneforgeError(
      `${what}: access denied (HTTP ${res.status}); ${ctx.repoId} is private or gated, or does not exist`,
      {
        hint: ctx.token
          ? "the token in HF_TOKEN has no access to this repo: accept the model's license on its Hub page, " +
            "or use a token with read access"
          : "set HF_TOKEN to a Hugging Face access token with read access (and accept the model's license " +
            "on its Hub page if it is gated)",
      },
    );
  }
  if (res.status === 404) {
    return new TuneforgeError(`${what}: not found (HTTP 404)`, {
      hint: `check the repo id "${ctx.repoId}" and the revision (they are case-sensitive)`,
    });
  }
  return new TuneforgeError(`${what}: unexpected HTTP ${res.status} ${res.statusText}`, {
    hint: "try again later; if it persists, check HF_ENDPOINT",
  });
}

/** Runs `attempt` until it succeeds, retrying RetryableErrors and network failures with backoff. */
async function withRetries<T>(ctx: Ctx, what: string, attempt: () => Promise<T>): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await attempt();
    } catch (e) {
      // fetch() reports network failures (refused, reset, DNS) as TypeError "fetch failed"/"terminated".
      const network = e instanceof TypeError && (e.message === "fetch failed" || e.message === "terminated");
      const retryable = e instanceof RetryableError || network;
      if (!retryable) throw e;
      if (tries >= ctx.maxRetries) {
        throw new TuneforgeError(`${what}: gave up after ${tries + 1} attempts (${(e as Error).message})`, {
          hint:
            "check your network connection (and HF_ENDPOINT), then run the same command again: finished " +
            "files are kept and partial ones resume",
          cause: e,
        });
      }
      const backoff = ctx.retryBaseMs * 2 ** tries;
      const wait = e instanceof RetryableError && e.waitMs !== null ? e.waitMs : backoff;
      await sleep(Math.min(wait, ctx.maxRetryWaitMs));
    }
  }
}

function authHeaders(ctx: Ctx): Record<string, string> {
  return ctx.token ? { authorization: `Bearer ${ctx.token}` } : {};
}

/** Bytes of a file on disk, 0 when missing. */
function sizeOf(path: string): number {
  return existsSync(path) ? statSync(path).size : 0;
}

/**
 * Downloads one file to `dest` through `dest.incomplete`, resuming from what is already there.
 * Returns when `dest` holds the complete file.
 */
async function downloadFile(
  url: string,
  dest: string,
  ctx: Ctx,
  what: string,
  progress: (downloaded: number, total: number | null) => void,
): Promise<void> {
  const partial = `${dest}.incomplete`;
  mkdirSync(dirname(dest), { recursive: true });
  await withRetries(ctx, what, async () => {
    const start = sizeOf(partial);
    const headers: Record<string, string> = { ...authHeaders(ctx) };
    if (start > 0) headers.range = `bytes=${start}-`;
    const res = await fetch(url, { headers, redirect: "follow" });
    if (res.status === 416 && start > 0) {
      // The partial file is not a prefix the server can continue (the file changed): start over.
      await res.body?.cancel();
      rmSync(partial, { force: true });
      throw new RetryableError(`${what}: server refused to resume; restarting`, 0);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw httpError(res, ctx, what);
    }
    let total: number | null = null;
    let append = false;
    if (res.status === 206) {
      const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== start) {
        await res.body?.cancel();
        rmSync(partial, { force: true });
        throw new RetryableError(`${what}: server resumed at the wrong offset; restarting`, 0);
      }
      total = m[2] === "*" ? null : Number(m[2]);
      append = true;
    } else {
      const len = res.headers.get("content-length");
      total = len !== null ? Number(len) : null; // a 200 is the whole file: start the partial over
    }
    let downloaded = append ? start : 0;
    progress(downloaded, total);
    if (res.body) {
      const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
      const count = async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          progress((downloaded += chunk.byteLength), total);
          yield chunk;
        }
      };
      try {
        await pipeline(body, count, createWriteStream(partial, { flags: append ? "a" : "w" }));
      } catch (e) {
        // Connection cut mid-file: what arrived is kept and the next attempt asks for the rest.
        throw new RetryableError(
          `${what}: download interrupted at ${sizeOf(partial)} bytes (${(e as Error).message})`,
        );
      }
    } else if (!append) {
      writeFileSync(partial, "");
    }
    const got = sizeOf(partial);
    if (total !== null && got !== total) {
      if (got > total) rmSync(partial, { force: true });
      throw new RetryableError(`${what}: got ${got} of ${total} bytes`);
    }
    renameSync(partial, dest);
  });
}

/** `org/name` (or a legacy single name), with the characters the Hub allows. */
function checkRepoId(repoId: string): void {
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(repoId) || repoId.includes("..")) {
    throw new TuneforgeError(`"${repoId}" is not a Hub repo id`, {
      hint: "use the form owner/name, e.g. Qwen/Qwen2.5-0.5B-Instruct",
    });
  }
}

const encodePath = (p: string) => p.split("/").map(encodeURIComponent).join("/");

/**
 * Downloads the files of a Hub model repo that tuneforge uses into `dir`. Files already complete in `dir`
 * are kept; partial downloads resume. Never touches the network for anything but `endpoint`.
 */
export async function pullModel(repoId: string, options: PullOptions = {}): Promise<PullResult> {
  checkRepoId(repoId);
  const revision = options.revision ?? "main";
  const endpoint = (options.endpoint ?? process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(
    /\/+$/,
    "",
  );
  const dir = options.dir ?? join("models", repoId.replace("/", "--"));
  const ctx: Ctx = {
    repoId,
    token: options.token ?? (process.env.HF_TOKEN || undefined),
    maxRetries: options.maxRetries ?? 5,
    retryBaseMs: options.retryBaseMs ?? 1000,
    maxRetryWaitMs: options.maxRetryWaitMs ?? 60_000,
  };

  const listUrl = `${endpoint}/api/models/${encodePath(repoId)}/revision/${encodeURIComponent(revision)}`;
  const info = await withRetries(ctx, `listing ${repoId}@${revision}`, async () => {
    const res = await fetch(listUrl, { headers: { ...authHeaders(ctx), accept: "application/json" } });
    if (!res.ok) {
      await res.body?.cancel();
      throw httpError(res, ctx, `listing ${repoId}@${revision}`);
    }
    return (await res.json()) as { sha?: unknown; siblings?: { rfilename?: unknown }[] };
  });
  if (!Array.isArray(info.siblings)) {
    throw new TuneforgeError(
      `listing ${repoId}@${revision}: the server's answer has no file list (siblings)`,
      {
        hint: "check HF_ENDPOINT: it must point at a Hugging Face Hub (or a compatible mirror)",
      },
    );
  }
  const all = info.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === "string");
  const files = selectModelFiles(repoId, all);
  // Download every file from one commit, so a push during the pull cannot mix two versions.
  const commit = typeof info.sha === "string" && /^[0-9a-f]{40}$/.test(info.sha) ? info.sha : revision;

  mkdirSync(dir, { recursive: true });
  const reused: string[] = [];
  for (let i = 0; i < files.length; i++) {
    const file = files[i];
    const dest = join(dir, file);
    if (existsSync(dest)) {
      // Only ever renamed into place after its size was checked, so it is complete.
      reused.push(file);
      options.onProgress?.({
        file,
        downloaded: sizeOf(dest),
        total: sizeOf(dest),
        fileIndex: i,
        fileCount: files.length,
      });
      continue;
    }
    const url = `${endpoint}/${encodePath(repoId)}/resolve/${encodeURIComponent(commit)}/${encodePath(file)}`;
    await downloadFile(url, dest, ctx, `downloading ${repoId}/${file}`, (downloaded, total) =>
      options.onProgress?.({ file, downloaded, total, fileIndex: i, fileCount: files.length }),
    );
  }
  writeJsonAtomic(join(dir, PULL_RECORD_FILE), { repo: repoId, revision, commit, endpoint, files });
  return { dir, commit, files, reused };
}
