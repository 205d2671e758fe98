#!/usr/bin/env node
// Turns a .cu file into C++ the emulator compiles (see README.md): the only CUDA syntax g++ cannot parse is
// the launch `k<<<grid, block, shared, stream>>>(args)` and `extern __shared__ T x[];`. Lines are kept in place
// and a #line directive names the original file, so compiler messages and __FILE__ point at the .cu source.
//   node native/cuda/emu/translate.mjs native/cuda/x.cu out.cc
import { readFileSync, writeFileSync } from "node:fs";

const [src, out] = process.argv.slice(2);
if (!src || !out) {
  console.error("usage: translate.mjs <file.cu> <out.cc>");
  process.exit(2);
}
let text = readFileSync(src, "utf8");

// A kernel name, optionally with template arguments (`pack_kernel<E>`), then the launch configuration.
const LAUNCH = /([A-Za-z_][\w:]*(?:<[^<>;(){}]*>)?)\s*<<<([^;]*?)>>>\s*\(/g;
let launches = 0;
text = text.replace(LAUNCH, (_, kernel, config) => {
  launches++;
  return `::emu::launch({${config}}, ${kernel}, "${kernel}")(`;
});
const SHARED = /extern\s+__shared__\s+([\w:]+)\s+(\w+)\s*\[\s*\]\s*;/g;
text = text.replace(
  SHARED,
  (_, type, name) => `${type}* ${name} = static_cast<${type}*>(::emu::dynamic_shared());`,
);

if (/<<<|>>>/.test(text)) {
  const line = text.slice(0, text.search(/<<<|>>>/)).split("\n").length;
  console.error(`${src}:${line}: a launch translate.mjs could not rewrite (keep the <<<...>>> on one line)`);
  process.exit(1);
}
writeFileSync(out, `#line 1 "${src}"\n${text}`);
console.log(`${src}: ${launches} launches`);
