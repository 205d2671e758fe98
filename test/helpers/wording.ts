// Word 4-grams of generated orders' texts (numbers and punctuation dropped): the tests that keep held-out
// phrasings out of the training wording compare these sets.
import type { GeneratedOrder } from "../../src/synth/purchaseOrders.js";

export function wordFourGrams(orders: GeneratedOrder[]): Set<string> {
  const out = new Set<string>();
  for (const o of orders) {
    const words = o.natural_language
      .replace(/[0-9.,:;()/]+/g, " ")
      .split(/\s+/)
      .filter(Boolean);
    for (let i = 0; i + 4 <= words.length; i++) out.add(words.slice(i, i + 4).join(" "));
  }
  return out;
}
