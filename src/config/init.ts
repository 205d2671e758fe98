// `tuneforge init`: copies a bundled example (a commented tuneforge.yaml plus its data) into a folder,
// so a new project starts from a config that works and explains every key.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { TuneforgeError } from "../errors.js";
import { writeFileAtomic } from "../store/atomic.js";

/** `init --template` name -> the folder under examples/ it copies. */
export const INIT_TEMPLATES = {
  translation: "translation",
  chat: "darija-chat",
  "json-extraction": "purchase-orders",
  "documents-qa": "documents",
} as const;
export type InitTemplate = keyof typeof INIT_TEMPLATES;

/** The installed package's root (the folder with tuneforge's package.json), from src/ (tsx) or dist/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (
      existsSync(pkg) &&
      (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "tuneforge"
    ) {
      return dir;
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error("cannot find tuneforge's package.json above " + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export function examplesDir(): string {
  return join(packageRoot(), "examples");
}

function listFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => !name.startsWith("."))
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? listFiles(path) : [path];
    })
    .sort();
}

export interface InitOptions {
  template: string;
  /** Target folder (created if missing). */
  dir: string;
  /** Overwrite files that already exist. */
  force?: boolean;
}

/** Writes the template's files into `dir`; returns the written paths. Writes nothing if any exists. */
export function initProject(options: InitOptions): string[] {
  if (!Object.hasOwn(INIT_TEMPLATES, options.template)) {
    throw new TuneforgeError(`unknown template "${options.template}"`, {
      hint: `use one of: ${Object.keys(INIT_TEMPLATES).join(", ")}`,
    });
  }
  const source = join(examplesDir(), INIT_TEMPLATES[options.template as InitTemplate]);
  const files = listFiles(source).filter((f) => !relative(source, f).split(/[\\/]/).includes("prepared"));
  const target = resolve(options.dir);
  const plan = files.map((from) => ({ from, to: join(target, relative(source, from)) }));
  const existing = plan.filter((p) => existsSync(p.to)).map((p) => p.to);
  if (existing.length > 0 && !options.force) {
    throw new TuneforgeError(
      `refusing to overwrite ${existing.length} existing file(s): ${existing.map((p) => relative(process.cwd(), p) || p).join(", ")}`,
      { hint: "pass --force to overwrite them, or --dir <new folder>" },
    );
  }
  for (const { from, to } of plan) writeFileAtomic(to, readFileSync(from));
  return plan.map((p) => p.to);
}
