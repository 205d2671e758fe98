import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse, type Server } from "node:http";
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { pullModel, selectModelFiles, type PullProgress } from "../../src/model/hub.js";
import { TuneforgeError } from "../../src/errors.js";

const SHA = "0123456789abcdef0123456789abcdef01234567";
const WEIGHTS = randomBytes(256 * 1024);
const SHARD2 = randomBytes(40 * 1024);
const FILES: Record<string, Buffer> = {
  "config.json": Buffer.from('{"model_type": "qwen2"}'),
  "generation_config.json": Buffer.from("{}"),
  "tokenizer.json": Buffer.from('{"model": {}}'),
  "tokenizer_config.json": Buffer.from('{"eos_token": "<|im_end|>"}'),
  "model-00001-of-00002.safetensors": WEIGHTS,
  "model-00002-of-00002.safetensors": SHARD2,
  "model.safetensors.index.json": Buffer.from('{"weight_map": {}}'),
};
const EXTRA = [
  "README.md",
  ".gitattributes",
  "pytorch_model.bin",
  "original/consolidated.00.pth",
  "onnx/model.onnx",
];

interface Req {
  url: string;
  range?: string;
  auth?: string;
}
let server: Server;
let endpoint = "";
let requests: Req[] = [];
let faults: Record<string, string[]> = {}; // url -> queued faults for the next requests

function handle(req: IncomingMessage, res: ServerResponse) {
  const url = decodeURI(req.url ?? "");
  requests.push({ url, range: req.headers.range, auth: req.headers.authorization });
  const fault = faults[url]?.shift();
  if (fault === "429") {
    res.writeHead(429, { "retry-after": "1" }).end("slow down");
    return;
  }
  if (fault === "503") {
    res.writeHead(503).end();
    return;
  }
  const repo = /^\/(?:api\/models\/)?(org\/[\w-]+)/.exec(url)?.[1];
  if (repo === "org/private" && req.headers.authorization !== "Bearer s3cret-token") {
    res.writeHead(401).end('{"error": "Invalid credentials"}');
    return;
  }
  const files =
    repo === "org/binonly" ? ["config.json", "pytorch_model.bin"] : [...Object.keys(FILES), ...EXTRA];
  if (
    url === `/api/models/${repo}/revision/main` &&
    (repo === "org/model" || repo === "org/private" || repo === "org/binonly")
  ) {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ id: repo, sha: SHA, siblings: files.map((rfilename) => ({ rfilename })) }));
    return;
  }
  const m = new RegExp(`^/${repo}/resolve/${SHA}/(.+)$`).exec(url);
  const body = m ? FILES[m[1]] : undefined;
  if (!body) {
    res.writeHead(404).end("Entry not found");
    return;
  }
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
  const start = range ? Number(range[1]) : 0;
  const part = body.subarray(start);
  res.writeHead(range ? 206 : 200, {
    "content-length": String(part.length),
    ...(range ? { "content-range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
  });
  if (fault === "cut") {
    // Send the headers and half the bytes, then drop the connection.
    res.write(part.subarray(0, Math.floor(part.length / 2)), () =>
      setTimeout(() => res.socket?.destroy(), 20),
    );
    return;
  }
  res.end(part);
}

before(async () => {
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const fast = { retryBaseMs: 10, maxRetries: 3 };
const shard1 = "model-00001-of-00002.safetensors";
const shard1Url = `/org/model/resolve/${SHA}/${shard1}`;

test("selects config, tokenizer and safetensors files at the top level only", () => {
  assert.deepEqual(
    selectModelFiles("org/model", [...Object.keys(FILES), ...EXTRA]).sort(),
    Object.keys(FILES).sort(),
  );
  assert.throws(
    () => selectModelFiles("org/x", ["config.json", "pytorch_model.bin"]),
    (e: unknown) =>
      e instanceof TuneforgeError && /no safetensors weights, only pytorch_model\.bin/.test(e.message),
  );
  assert.throws(() => selectModelFiles("org/x", ["model.safetensors"]), /no config\.json/);
});

test("downloads the repo, resuming a cut connection with a Range request and retrying 429/503", async () => {
  requests = [];
  faults = {
    [shard1Url]: ["cut"],
    [`/org/model/resolve/${SHA}/tokenizer.json`]: ["429"],
    [`/org/model/resolve/${SHA}/config.json`]: ["503"],
  };
  const dir = mkdtempSync(join(tmpdir(), "tf-hub-"));
  const seen: PullProgress[] = [];
  const t0 = Date.now();
  const result = await pullModel("org/model", {
    dir,
    endpoint,
    token: "",
    ...fast,
    onProgress: (p) => seen.push({ ...p }),
  });
  const elapsed = Date.now() - t0;
  assert.equal(result.commit, SHA);
  assert.deepEqual(result.files.sort(), Object.keys(FILES).sort());
  for (const [name, bytes] of Object.entries(FILES))
    assert.ok(readFileSync(join(dir, name)).equals(bytes), name);
  for (const extra of ["README.md", "pytorch_model.bin", "original"])
    assert.ok(!existsSync(join(dir, extra)));
  assert.ok(!readdirSync(dir).some((f) => f.endsWith(".incomplete")));

  // The cut file was requested twice: the second time from where the first stopped, not from 0.
  const weightReqs = requests.filter((r) => r.url === shard1Url);
  assert.equal(weightReqs.length, 2);
  assert.equal(weightReqs[0].range, undefined);
  // From the bytes that reached the disk: all that was sent, unless the connection reset dropped the last
  // unread ones (a busy machine reads them late).
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(weightReqs[1].range ?? "")?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= WEIGHTS.length / 2, `resumed with Range ${weightReqs[1].range}`);
  // 429 honoured its Retry-After of 1 s; 503 was retried.
  assert.equal(requests.filter((r) => r.url.endsWith("/tokenizer.json")).length, 2);
  assert.equal(requests.filter((r) => r.url.endsWith("/config.json")).length, 2);
  assert.ok(elapsed >= 950, `finished in ${elapsed} ms, before Retry-After`);
  assert.ok(requests.every((r) => r.auth === undefined));
  const last = seen.filter((p) => p.file === shard1).at(-1)!;
  assert.equal(last.downloaded, WEIGHTS.length);
  assert.equal(last.total, WEIGHTS.length);
  assert.equal(last.fileCount, Object.keys(FILES).length);
  const record = JSON.parse(readFileSync(join(dir, "tuneforge-pull.json"), "utf8"));
  assert.equal(record.commit, SHA);

  // A second pull reuses complete files and downloads nothing.
  requests = [];
  const again = await pullModel("org/model", { dir, endpoint, ...fast });
  assert.deepEqual(again.reused.sort(), Object.keys(FILES).sort());
  assert.ok(requests.every((r) => r.url.startsWith("/api/")));
});

test("resumes a partial file left by an earlier run", async () => {
  requests = [];
  faults = {};
  const dir = mkdtempSync(join(tmpdir(), "tf-hub-"));
  writeFileSync(join(dir, `${shard1}.incomplete`), WEIGHTS.subarray(0, 1000));
  await pullModel("org/model", { dir, endpoint, ...fast });
  assert.ok(readFileSync(join(dir, shard1)).equals(WEIGHTS));
  assert.deepEqual(
    requests.filter((r) => r.url === shard1Url).map((r) => r.range),
    ["bytes=1000-"],
  );
});

test("401 tells to set HF_TOKEN without printing the token; the token is sent when given", async () => {
  faults = {};
  const dir = mkdtempSync(join(tmpdir(), "tf-hub-"));
  await assert.rejects(
    pullModel("org/private", { dir, endpoint, token: "", ...fast }),
    (e: unknown) =>
      e instanceof TuneforgeError && /HTTP 401/.test(e.message) && /set HF_TOKEN/.test(e.message),
  );
  await assert.rejects(
    pullModel("org/private", { dir, endpoint, token: "wrong-token", ...fast }),
    (e: unknown) =>
      e instanceof TuneforgeError && /has no access/.test(e.message) && !e.message.includes("wrong-token"),
  );
  requests = [];
  const ok = await pullModel("org/private", { dir, endpoint, token: "s3cret-token", ...fast });
  assert.equal(ok.files.length, Object.keys(FILES).length);
  assert.ok(requests.length > 0 && requests.every((r) => r.auth === "Bearer s3cret-token"));
});

test("404 says the repo was not found; .bin-only repos and endless 5xx give clear errors", async () => {
  faults = {};
  const dir = mkdtempSync(join(tmpdir(), "tf-hub-"));
  await assert.rejects(
    pullModel("org/missing", { dir, endpoint, ...fast }),
    /not found \(HTTP 404\)[\s\S]*check the repo id/,
  );
  await assert.rejects(pullModel("org/binonly", { dir, endpoint, ...fast }), /only pytorch_model\.bin/);
  await assert.rejects(pullModel("not a repo", { dir, endpoint, ...fast }), /not a Hub repo id/);
  faults = { "/api/models/org/model/revision/main": ["503", "503", "503", "503"] };
  await assert.rejects(
    pullModel("org/model", { dir, endpoint, ...fast }),
    /gave up after 4 attempts \(.*HTTP 503/,
  );
});
