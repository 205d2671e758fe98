#!/usr/bin/env node
// Decides whether the addon gets the CUDA backend, for binding.gyp (and anyone curious):
//   node native/find-cuda.mjs enabled   -> "1" when nvcc, the CUDA runtime AND cuBLAS/cuBLASLt headers and
//                                          libraries are all found, else "0" (the reason goes to stderr)
//   node native/find-cuda.mjs nvcc      -> path of nvcc
//   node native/find-cuda.mjs nvccflags -> flags for compiling .cu files (architectures, include dirs)
//   node native/find-cuda.mjs libs      -> linker flags (-L, -l, rpath)
//   node native/find-cuda.mjs report    -> everything, as JSON
// It never fails: any problem means "build the CPU backend only", so `npm install` works without CUDA.
// Environment: TUNEFORGE_CUDA=0 turns CUDA off; CUDA_HOME / CUDA_PATH name the toolkit; CUDA_CUBLAS_INCLUDE
// and CUDA_CUBLAS_LIB name cuBLAS directories outside it; TUNEFORGE_CUDA_ARCH="80 90" picks the SM targets (by
// default 80 and 90, plus this machine's GPUs that those do not cover: see chooseArchs).
import { execFileSync } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";

const env = process.env;

function executable(path) {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function uniq(list) {
  return [...new Set(list.filter((d) => typeof d === "string" && d.length > 0))];
}

function findNvcc() {
  const homes = uniq([env.CUDA_HOME, env.CUDA_PATH, "/usr/local/cuda", "/opt/cuda"]);
  for (const home of homes)
    if (executable(join(home, "bin", "nvcc"))) return { home, nvcc: join(home, "bin", "nvcc") };
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    const nvcc = join(dir, "nvcc");
    if (dir && executable(nvcc)) return { home: dirname(dir), nvcc };
  }
  return null;
}

/** Lines a command prints, or [] when it is missing or fails (nothing here may stop `npm install`). */
function outputLines(cmd, args) {
  try {
    const out = execFileSync(cmd, args, {
      encoding: "utf8",
      timeout: 10_000,
      stdio: ["ignore", "pipe", "ignore"],
    });
    return out
      .split("\n")
      .map((l) => l.trim())
      .filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * The SM targets: TUNEFORGE_CUDA_ARCH when set; else 80 and 90 (A100, H100; sm_80 code also runs on 8.6 and 8.9
 * cards) plus each GPU of this machine those do not cover, such as a T4 (7.5) or a Blackwell card (10.0, 12.0),
 * when this nvcc can build for it. Without its own code a GPU could only JIT the newest target's PTX, and only if it
 * is newer than that target: a T4 would have no kernel at all. `gpuCaps`: compute capabilities ("7.5");
 * `nvccArchs`: what nvcc --list-gpu-arch offers ("75"), empty when unknown (then nothing is added).
 */
export function chooseArchs(envValue, gpuCaps, nvccArchs) {
  const valid = (a) => /^\d+a?$/.test(a);
  if (envValue) return envValue.split(/[\s,;]+/).filter(valid);
  const archs = ["80", "90"];
  for (const cap of gpuCaps) {
    const m = /^(\d+)\.(\d+)$/.exec(cap);
    if (!m) continue;
    const [major, minor] = [Number(m[1]), Number(m[2])];
    const covered = archs.some((a) => Math.floor(Number(a) / 10) === major && Number(a) % 10 <= minor);
    const code = `${major}${minor}`;
    if (!covered && nvccArchs.includes(code)) archs.push(code);
  }
  return [...new Set(archs)].sort((a, b) => Number(a) - Number(b));
}

const firstDirWith = (dirs, files) => dirs.find((d) => files.every((f) => existsSync(join(d, f)))) ?? null;

export function findCuda() {
  if (env.TUNEFORGE_CUDA === "0") return { enabled: false, reason: "TUNEFORGE_CUDA=0" };
  const found = findNvcc();
  if (!found) return { enabled: false, reason: "nvcc not found (set CUDA_HOME to the CUDA toolkit)" };
  const { home, nvcc } = found;
  const incDirs = uniq([
    join(home, "include"),
    join(home, "targets", "x86_64-linux", "include"),
    "/usr/include",
  ]);
  const libDirs = uniq([
    join(home, "lib64"),
    join(home, "lib"),
    join(home, "targets", "x86_64-linux", "lib"),
    "/usr/lib/x86_64-linux-gnu",
  ]);
  const runtimeInc = firstDirWith(incDirs, ["cuda_runtime.h"]);
  const cudartLib = firstDirWith(libDirs, ["libcudart.so"]);
  // nvcc alone is not enough (a toolkit without the math libraries): cuBLAS and cuBLASLt must both be there.
  const cublasInc = firstDirWith(uniq([env.CUDA_CUBLAS_INCLUDE, ...incDirs]), ["cublas_v2.h", "cublasLt.h"]);
  const cublasLib = firstDirWith(uniq([env.CUDA_CUBLAS_LIB, ...libDirs]), ["libcublas.so", "libcublasLt.so"]);
  const missing = [
    !runtimeInc && "cuda_runtime.h",
    !cudartLib && "libcudart.so",
    !cublasInc && "cublas_v2.h/cublasLt.h (set CUDA_CUBLAS_INCLUDE)",
    !cublasLib && "libcublas.so/libcublasLt.so (set CUDA_CUBLAS_LIB)",
  ].filter(Boolean);
  if (missing.length > 0)
    return { enabled: false, reason: `nvcc at ${nvcc} but no ${missing.join(", ")}`, nvcc };
  const archs = chooseArchs(
    env.TUNEFORGE_CUDA_ARCH,
    env.TUNEFORGE_CUDA_ARCH
      ? []
      : outputLines("nvidia-smi", ["--query-gpu=compute_cap", "--format=csv,noheader"]),
    env.TUNEFORGE_CUDA_ARCH
      ? []
      : outputLines(nvcc, ["--list-gpu-arch"]).map((l) => l.replace(/^compute_/, "")),
  );
  const newest = archs[archs.length - 1] ?? "90";
  const gencode = [
    ...archs.map((a) => `-gencode=arch=compute_${a},code=sm_${a}`),
    // PTX of the newest target too, so GPUs newer than the list can JIT-compile it.
    `-gencode=arch=compute_${newest},code=compute_${newest}`,
  ];
  const includes = uniq([runtimeInc, cublasInc]).map((d) => `-I${d}`);
  const libDirsUsed = uniq([cublasLib, cudartLib]);
  return {
    enabled: true,
    nvcc,
    home,
    nvccflags: ["-std=c++17", "-O3", "-Xcompiler=-fPIC", ...gencode, ...includes],
    libs: [
      ...libDirsUsed.map((d) => `-L${d}`),
      "-lcublas",
      "-lcublasLt",
      "-lcudart",
      ...libDirsUsed.map((d) => `-Wl,-rpath,${d}`),
    ],
    reason: `CUDA backend: nvcc ${nvcc}, cuBLAS headers ${cublasInc}, libraries ${cublasLib}`,
  };
}

const mode = process.argv[2];
if (mode) {
  let info;
  try {
    info = findCuda();
  } catch (err) {
    info = {
      enabled: false,
      reason: `find-cuda failed: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  if (mode === "enabled") {
    process.stderr.write(`tuneforge: ${info.enabled ? info.reason : `CPU backend only (${info.reason})`}\n`);
    process.stdout.write(info.enabled ? "1" : "0");
  } else if (mode === "nvcc") process.stdout.write(info.nvcc ?? "nvcc");
  else if (mode === "nvccflags") process.stdout.write((info.nvccflags ?? []).join(" "));
  else if (mode === "libs") process.stdout.write((info.libs ?? []).join(" "));
  else process.stdout.write(JSON.stringify(info, null, 2) + "\n");
}
