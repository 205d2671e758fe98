// Writes a realistic English–Arabic CSV of N distinct rows (streaming, so 1M rows cost no memory here).
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { createRng } from "../../src/data/random.js";

const EN = [
  "server",
  "network",
  "update",
  "database",
  "user",
  "password",
  "report",
  "budget",
  "market",
  "student",
];
const AR = [
  "الخادم",
  "الشبكة",
  "التحديث",
  "قاعدة البيانات",
  "المستخدم",
  "كلمة المرور",
  "التقرير",
  "الميزانية",
  "السوق",
  "الطالب",
];
const VERBS = ["restarted", "failed", "was updated", "grew", "was reviewed"];
const VERBS_AR = ["أُعيد تشغيله", "فشل", "تم تحديثه", "نما", "تمت مراجعته"];

export async function writeBenchCsv(path: string, rows: number, seed = 1): Promise<number> {
  const rng = createRng(seed);
  const out = createWriteStream(path);
  let bytes = 0;
  const write = async (s: string) => {
    bytes += Buffer.byteLength(s);
    if (!out.write(s)) await once(out, "drain");
  };
  await write("english,arabic\n");
  for (let i = 0; i < rows; i++) {
    const a = rng.int(EN.length);
    const v = rng.int(VERBS.length);
    // The row number keeps every row distinct, so deduplication keeps them all (the worst case for memory).
    await write(
      `"The ${EN[a]} ${VERBS[v]} at step ${i}, then it was logged.",${AR[a]} ${VERBS_AR[v]} في الخطوة ${i}، ثم سُجّل ذلك.\n`,
    );
  }
  out.end();
  await once(out, "finish");
  return bytes;
}
