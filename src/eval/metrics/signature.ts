// sacreBLEU-style signature strings (`key:value|...|version:X`), so a score can be reported next to the exact
// settings that produced it and compared with numbers computed by sacreBLEU itself.

/** The sacreBLEU release whose numbers these metrics reproduce; it ends every signature like sacreBLEU's. */
export const SACREBLEU_VERSION = "2.6.0";

export function formatSignature(fields: ReadonlyArray<readonly [string, string | number]>): string {
  return [...fields.map(([k, v]) => `${k}:${v}`), `version:${SACREBLEU_VERSION}`].join("|");
}
