// Safetensors reading (lazy, by byte offset) and writing.
// Format: 8-byte little-endian header length, a JSON header {name: {dtype, shape, data_offsets}},
// then the raw little-endian tensor bytes. We read one tensor at a time with positioned reads, so a
// multi-GB checkpoint never sits whole in memory. Written by hand: the format is ~20 lines of spec and
// the npm packages for it either load whole files or pull in a tensor library.
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { TuneforgeError } from "../errors.js";
import { writeFileAtomic } from "../store/atomic.js";

export type DType = "F32" | "F16" | "BF16" | "I32" | "I64" | "U8" | "I8" | "F64" | "BOOL";

const DTYPE_BYTES: Record<DType, number> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  U8: 1,
  I8: 1,
  F64: 8,
  BOOL: 1,
};

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte offset of the tensor data in the file. */
  offset: number;
  byteLength: number;
  file: string;
}

export class SafetensorsError extends TuneforgeError {}

/** One open .safetensors file. Call close() when done (or use readSafetensorsHeader for headers only). */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string>;
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    header: Record<string, unknown>,
    dataStart: number,
  ) {
    this.fd = fd;
    const size = fstatSync(fd).size;
    this.metadata = (header.__metadata__ as Record<string, string>) ?? {};
    for (const [name, raw] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const entry = raw as { dtype: string; shape: number[]; data_offsets: [number, number] };
      if (!(entry.dtype in DTYPE_BYTES)) {
        throw new SafetensorsError(
          `${path}: tensor "${name}" has dtype ${entry.dtype}; supported: ${Object.keys(DTYPE_BYTES).join(", ")}`,
        );
      }
      const [begin, end] = entry.data_offsets;
      const expected = entry.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[entry.dtype as DType];
      if (end - begin !== expected || dataStart + end > size) {
        throw new SafetensorsError(`${path}: tensor "${name}" has inconsistent offsets (file truncated?)`);
      }
      this.tensors.set(name, {
        name,
        dtype: entry.dtype as DType,
        shape: entry.shape,
        offset: dataStart + begin,
        byteLength: end - begin,
        file: path,
      });
    }
  }

  static open(path: string): SafetensorsFile {
    const fd = openSync(path, "r");
    try {
      const lenBuf = Buffer.alloc(8);
      if (readSync(fd, lenBuf, 0, 8, 0) !== 8)
        throw new SafetensorsError(`${path}: not a safetensors file (too short)`);
      const headerLen = Number(lenBuf.readBigUInt64LE(0));
      if (headerLen > 100_000_000)
        throw new SafetensorsError(`${path}: not a safetensors file (header too large)`);
      const headerBuf = Buffer.alloc(headerLen);
      readSync(fd, headerBuf, 0, headerLen, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(headerBuf.toString("utf8"));
      } catch {
        throw new SafetensorsError(`${path}: not a safetensors file (header is not JSON)`);
      }
      return new SafetensorsFile(path, fd, header, 8 + headerLen);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new SafetensorsError(`${this.path}: no tensor named "${name}"`);
    return t;
  }

  /** The tensor's raw bytes (a fresh Buffer). */
  readRaw(name: string): Buffer {
    if (this.fd === null) throw new SafetensorsError(`${this.path}: file is closed`);
    const t = this.info(name);
    const buf = Buffer.allocUnsafe(t.byteLength);
    let done = 0;
    while (done < t.byteLength) {
      const n = readSync(this.fd, buf, done, t.byteLength - done, t.offset + done);
      if (n === 0) throw new SafetensorsError(`${this.path}: unexpected end of file in "${name}"`);
      done += n;
    }
    return buf;
  }

  /** The tensor converted to float32 (from F32, F16 or BF16). */
  readF32(name: string): Float32Array {
    return toFloat32(this.readRaw(name), this.info(name).dtype, `${this.path}: "${name}"`);
  }

  /** An integer tensor (I32 or I64) as Int32Array. */
  readI32(name: string): Int32Array {
    const t = this.info(name);
    const raw = this.readRaw(name);
    if (t.dtype === "I32") return new Int32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4).slice();
    if (t.dtype === "I64") {
      const big = new BigInt64Array(raw.buffer, raw.byteOffset, raw.byteLength / 8);
      return Int32Array.from(big, (v) => Number(v));
    }
    throw new SafetensorsError(`${this.path}: "${name}" is ${t.dtype}, expected an integer tensor`);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

export function toFloat32(raw: Buffer, dtype: DType, what: string): Float32Array {
  // Copy into an aligned buffer first: Buffer slices may start at odd offsets.
  const aligned = new Uint8Array(raw.byteLength);
  aligned.set(raw);
  switch (dtype) {
    case "F32":
      return new Float32Array(aligned.buffer);
    case "BF16": {
      const src = new Uint16Array(aligned.buffer);
      const out = new Uint32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case "F16": {
      const src = new Uint16Array(aligned.buffer);
      const out = new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) out[i] = f16ToF32(src[i]);
      return out;
    }
    case "F64":
      return Float32Array.from(new Float64Array(aligned.buffer));
    default:
      throw new SafetensorsError(`${what} has dtype ${dtype}; expected F32, F16 or BF16`);
  }
}

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> bfloat16 bits with round-to-nearest-even (what torch does). */
export function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  if ((u & 0x7f800000) === 0x7f800000 && u & 0x7fffff) return 0x7fc0; // NaN
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 -> float16 bits with round-to-nearest-even. */
export function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const u = u32Scratch[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

/** All tensors of a checkpoint folder: a single model.safetensors, a sharded index, or any *.safetensors. */
export class Checkpoint {
  private constructor(
    readonly dir: string,
    private readonly files: SafetensorsFile[],
    private readonly byName: Map<string, SafetensorsFile>,
  ) {}

  static open(dir: string): Checkpoint {
    const index = join(dir, "model.safetensors.index.json");
    let paths: string[];
    if (existsSync(index)) {
      const weightMap = (JSON.parse(readFileSync(index, "utf8")) as { weight_map: Record<string, string> })
        .weight_map;
      paths = [...new Set(Object.values(weightMap))].map((f) => join(dir, f));
      for (const p of paths) {
        if (!existsSync(p)) throw new SafetensorsError(`${index} names shard ${p}, which is missing`);
      }
    } else if (existsSync(join(dir, "model.safetensors"))) {
      paths = [join(dir, "model.safetensors")];
    } else {
      paths = readdirSync(dir)
        .filter((f) => f.endsWith(".safetensors"))
        .sort()
        .map((f) => join(dir, f));
      if (paths.length === 0) {
        throw new SafetensorsError(
          `${dir}: no model.safetensors, model.safetensors.index.json or *.safetensors found ` +
            `(tuneforge reads safetensors checkpoints; convert .bin/.pt weights with transformers first)`,
        );
      }
    }
    const files = paths.map((p) => SafetensorsFile.open(p));
    const byName = new Map<string, SafetensorsFile>();
    for (const f of files) for (const name of f.tensors.keys()) byName.set(name, f);
    return new Checkpoint(dir, files, byName);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  info(name: string): TensorInfo {
    return this.file(name).info(name);
  }

  readF32(name: string): Float32Array {
    return this.file(name).readF32(name);
  }

  readRaw(name: string): Buffer {
    return this.file(name).readRaw(name);
  }

  close(): void {
    for (const f of this.files) f.close();
  }

  private file(name: string): SafetensorsFile {
    const f = this.byName.get(name);
    if (!f) throw new SafetensorsError(`${this.dir}: checkpoint has no tensor "${name}"`);
    return f;
  }
}

export interface TensorToWrite {
  name: string;
  dtype: DType;
  shape: number[];
  /** Raw little-endian bytes in `dtype`, or a Float32Array converted to `dtype` on write. */
  data: Uint8Array | Float32Array | Int32Array;
}

/** Encodes tensors as safetensors bytes (sorted by name, as the Python writer does). */
export function encodeSafetensors(tensors: TensorToWrite[], metadata: Record<string, string> = {}): Buffer {
  const sorted = sortByName(tensors);
  const blobs = sorted.map((t) => tensorBytes(t));
  const head = safetensorsHead(
    sorted.map((t, i) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: blobs[i].byteLength })),
    metadata,
  );
  return Buffer.concat([head, ...blobs.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]);
}

/** Writes a .safetensors file atomically. */
export function writeSafetensors(
  path: string,
  tensors: TensorToWrite[],
  metadata: Record<string, string> = {},
) {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** A tensor whose bytes are produced later, one at a time (see writeSafetensorsStreaming). */
export interface TensorEntry {
  name: string;
  dtype: DType;
  shape: number[];
  byteLength: number;
}

function sortByName<T extends { name: string }>(items: T[]): T[] {
  return [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The 8-byte length and the JSON header for `entries` (already in file order), padded to 8 bytes. */
function safetensorsHead(entries: TensorEntry[], metadata: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.byteLength] };
    offset += e.byteLength;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8); // keep the data 8-byte aligned
  const headerBuf = Buffer.from(json, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(headerBuf.byteLength));
  return Buffer.concat([len, headerBuf]);
}

/**
 * Writes a safetensors file whose tensors are produced one at a time by `produce`, so a multi-GB checkpoint
 * never sits in memory whole (the header goes first: every shape is known up front). Written to a temporary
 * file then renamed, so the target is never half-written. Returns the data size in bytes.
 */
export function writeSafetensorsStreaming(
  path: string,
  entries: TensorEntry[],
  produce: (name: string) => Uint8Array,
  metadata: Record<string, string> = {},
  onTensor: (name: string) => void = () => {},
): number {
  const sorted = sortByName(entries);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.tmp`);
  const fd = openSync(tmp, "w");
  const writeAll = (bytes: Uint8Array) => {
    let done = 0;
    while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
  };
  let total = 0;
  try {
    writeAll(safetensorsHead(sorted, metadata));
    for (const e of sorted) {
      const bytes = produce(e.name);
      if (bytes.byteLength !== e.byteLength) {
        throw new SafetensorsError(
          `tensor "${e.name}": produced ${bytes.byteLength} bytes, expected ${e.byteLength}`,
        );
      }
      writeAll(bytes);
      total += bytes.byteLength;
      onTensor(e.name);
    }
    fsyncSync(fd);
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  renameSync(tmp, path);
  return total;
}

/** float32 values as the little-endian bytes of `dtype` (F32, BF16 or F16). */
export function encodeFloats(values: Float32Array, dtype: DType, what: string): Uint8Array {
  if (dtype === "F32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (dtype === "BF16" || dtype === "F16") {
    const conv = dtype === "BF16" ? f32ToBf16 : f32ToF16;
    const out = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
    return new Uint8Array(out.buffer);
  }
  throw new SafetensorsError(`${what}: cannot write float data as ${dtype} (only F32, BF16, F16)`);
}

function tensorBytes(t: TensorToWrite): Uint8Array {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.data instanceof Float32Array) {
    if (t.data.length !== count)
      throw new SafetensorsError(`tensor "${t.name}": ${t.data.length} values for shape [${t.shape}]`);
    return encodeFloats(t.data, t.dtype, `tensor "${t.name}"`);
  }
  if (t.data instanceof Int32Array) {
    if (t.dtype !== "I32")
      throw new SafetensorsError(`tensor "${t.name}": Int32Array data must be written as I32`);
    return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  }
  if (t.data.byteLength !== count * DTYPE_BYTES[t.dtype]) {
    throw new SafetensorsError(`tensor "${t.name}": ${t.data.byteLength} bytes for ${t.dtype}[${t.shape}]`);
  }
  return t.data;
}
