import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { generatePurchaseOrders, PHRASING_IDS, type GeneratedOrder } from "../../src/synth/purchaseOrders.js";
import { DATE_STYLES, formatDateStyle } from "../../src/synth/orderComposer.js";
import { wordFourGrams } from "../helpers/wording.js";

const digest = (orders: GeneratedOrder[]) =>
  createHash("sha256").update(JSON.stringify(orders)).digest("hex");

test('without the option (or with variety "templates") the output is byte-identical to before it existed', () => {
  // Digests of the generator's output before `variety` was added: existing datasets, the demo's held-out set
  // and anyone's seeded data must not change.
  assert.equal(
    digest(generatePurchaseOrders({ count: 300, seed: 1 })),
    "3866f3f9d2c471a81e19dee2ec412ff5660720c6d5832c7c45864b7066e64b97",
  );
  assert.equal(
    digest(generatePurchaseOrders({ count: 300, seed: 2026, phrasings: "heldout" })),
    "a973f2937668e9e8e4c34c6b1079e22c728408b15adf0168f9fe6c3fb70ef041",
  );
  assert.deepEqual(
    generatePurchaseOrders({ count: 100, seed: 1, variety: "templates" }),
    generatePurchaseOrders({ count: 100, seed: 1 }),
  );
  // Held-out orders ignore the option: the evaluation never moves with the training data's variety.
  assert.deepEqual(
    generatePurchaseOrders({ count: 100, seed: 3, phrasings: "heldout", variety: "rich" }),
    generatePurchaseOrders({ count: 100, seed: 3, phrasings: "heldout" }),
  );
  assert.throws(
    () => generatePurchaseOrders({ count: 1, seed: 1, variety: "wild" as "rich" }),
    /variety must be "templates" or "rich"/,
  );
});

test("rich orders are deterministic per seed and mix composed texts with the training templates", () => {
  const a = generatePurchaseOrders({ count: 300, seed: 11, variety: "rich" });
  assert.deepEqual(generatePurchaseOrders({ count: 300, seed: 11, variety: "rich" }), a);
  assert.notDeepEqual(generatePurchaseOrders({ count: 300, seed: 12, variety: "rich" }), a);
  assert.deepEqual(generatePurchaseOrders({ count: 320, seed: 11, variety: "rich" }).slice(0, 300), a);
  // The orders themselves (json_data) are the same stream as without the option; only the wording differs.
  assert.deepEqual(
    a.map((o) => o.json_data).slice(0, 1),
    generatePurchaseOrders({ count: 1, seed: 11 }).map((o) => o.json_data),
  );
  const train = new Set(PHRASING_IDS.train);
  const composed = a.filter((o) => o.phrasing.startsWith("composed-"));
  const templated = a.filter((o) => train.has(o.phrasing));
  assert.equal(composed.length + templated.length, a.length, "no held-out phrasing in training data");
  assert.ok(composed.length > 150 && composed.length < 250, `${composed.length} composed of 300`);
  assert.equal(new Set(composed.map((o) => o.phrasing)).size, 3, "form, prose and mixed layouts");
});

/** Every way the composer (or a template) may write a date. */
function dateForms(iso: string): string[] {
  return Array.from({ length: DATE_STYLES }, (_, s) => formatDateStyle(iso, s));
}

test("every value of json_data is stated in a rich text", () => {
  for (const order of generatePurchaseOrders({ count: 400, seed: 5, variety: "rich" })) {
    const { natural_language: text, json_data: j } = order;
    const where = `${order.phrasing}: "${text}"`;
    const numbers = new Set([...text.matchAll(/\d+(?:\.\d+)?/g)].map((m) => Number(m[0])));
    for (const p of j.productos) {
      assert.ok(numbers.has(p.cantidad), `cantidad ${p.cantidad} in ${where}`);
      assert.ok(numbers.has(p.precio_unitario), `precio ${p.precio_unitario} in ${where}`);
      assert.ok(text.includes(p.descripcion), `${p.descripcion} in ${where}`);
      if (p.sku) assert.ok(text.includes(p.sku), `sku ${p.sku} in ${where}`);
    }
    assert.ok(text.includes(j.cliente), `${j.cliente} in ${where}`);
    if (j.empresa) assert.ok(text.includes(j.empresa.replace(/\.$/, "")), `${j.empresa} in ${where}`);
    if (j.direccion_entrega) assert.ok(text.includes(j.direccion_entrega), where);
    if (j.notas) assert.ok(text.toLowerCase().includes(j.notas.slice(1).toLowerCase()), where);
    assert.ok(
      dateForms(j.fecha_entrega).some((f) => text.includes(f)),
      `${j.fecha_entrega} in ${where}`,
    );
    // The currency is named (code, name or symbol) and products are listed in json_data's order.
    const positions = j.productos.map((p) => text.indexOf(p.descripcion));
    assert.deepEqual(
      [...positions].sort((x, y) => x - y),
      positions,
      `product order in ${where}`,
    );
  }
});

test("rich texts never use the held-out phrasings' distinctive wording", () => {
  const banned = [
    /AQUI/,
    /\bx\d/, // "x25": the SMS's quantity
    /\/\//,
    /\d(?:pesos|soles|euros|dólares)/, // an amount glued to a currency name
    /\b(?:nombre|compania|item|cant|pu|fecha|prioridad|direccion|comentario)=/i,
    /Cláusula/,
    /se acuerda el suministro/,
    /en total/,
    /por unidad/,
    /\bPide\b/,
    /Ayer hablé/,
    /me comentó/,
    /hacen falta/,
    /te dejo un audio/,
    /a más tardar/,
    /vale, chao/,
  ];
  for (const o of generatePurchaseOrders({ count: 1500, seed: 21, variety: "rich" })) {
    for (const re of banned)
      assert.doesNotMatch(o.natural_language, re, `${o.phrasing}: "${o.natural_language}"`);
  }
  // And the held-out texts still have word 4-grams no rich training text has.
  const train = wordFourGrams(generatePurchaseOrders({ count: 1500, seed: 3, variety: "rich" }));
  for (const o of generatePurchaseOrders({ count: 60, seed: 4, phrasings: "heldout" }))
    assert.ok(
      [...wordFourGrams([o])].some((g) => !train.has(g)),
      `${o.phrasing} has wording of its own`,
    );
});

test("rich texts vary where and how each field is written", () => {
  const orders = generatePurchaseOrders({ count: 600, seed: 8, variety: "rich" }).filter((o) =>
    o.phrasing.startsWith("composed-"),
  );
  // The date comes before the products in some texts and after them in others; likewise the client.
  const before = (o: GeneratedOrder, a: string, b: string) =>
    o.natural_language.indexOf(a) < o.natural_language.indexOf(b);
  const first = (o: GeneratedOrder) => o.json_data.productos[0].descripcion;
  const dateIn = (o: GeneratedOrder) =>
    dateForms(o.json_data.fecha_entrega).find((f) => o.natural_language.includes(f))!;
  const dateFirst = orders.filter((o) => before(o, dateIn(o), first(o))).length;
  assert.ok(dateFirst > 60 && dateFirst < orders.length - 60, `date before products in ${dateFirst}`);
  const clientLast = orders.filter((o) => before(o, first(o), o.json_data.cliente)).length;
  assert.ok(clientLast > 60 && clientLast < orders.length - 60, `client after products in ${clientLast}`);
  // Quantity before and after the product's name; the currency before and after the amount.
  const qtyFirst = orders.filter((o) => {
    const p = o.json_data.productos[0];
    return o.natural_language.indexOf(` ${p.cantidad} `) < o.natural_language.indexOf(p.descripcion);
  }).length;
  assert.ok(qtyFirst > 60 && qtyFirst < orders.length - 60, `quantity first in ${qtyFirst}`);
  assert.ok(orders.some((o) => /\b(?:EUR|USD|MXN|COP|ARS|CLP|PEN) \d/.test(o.natural_language)));
  assert.ok(orders.some((o) => /\d (?:EUR|USD|MXN|COP|ARS|CLP|PEN)\b/.test(o.natural_language)));
  // Many date styles, and many distinct skeletons (the text with every value and digit blanked).
  const styles = new Set(orders.map((o) => dateForms(o.json_data.fecha_entrega).indexOf(dateIn(o))));
  assert.equal(styles.size, DATE_STYLES);
  const skeleton = (o: GeneratedOrder) => {
    let t = o.natural_language;
    const j = o.json_data;
    for (const v of [
      j.cliente,
      j.empresa,
      j.direccion_entrega,
      j.notas,
      ...j.productos.flatMap((p) => [p.descripcion, p.sku]),
    ])
      if (v) t = t.split(v).join("_");
    return t.replace(/\d+/g, "0");
  };
  const skeletons = new Set(orders.map(skeleton));
  assert.ok(skeletons.size > orders.length * 0.95, `${skeletons.size} skeletons of ${orders.length}`);
});
