import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  generatePurchaseOrders,
  PHRASING_IDS,
  writePurchaseOrdersJsonl,
} from "../../src/synth/purchaseOrders.js";
import { wordFourGrams } from "../helpers/wording.js";

const MONTHS = [
  "enero",
  "febrero",
  "marzo",
  "abril",
  "mayo",
  "junio",
  "julio",
  "agosto",
  "septiembre",
  "octubre",
  "noviembre",
  "diciembre",
];

/** The ways a date may be written in the text. */
function dateForms(iso: string): string[] {
  const [y, m, d] = iso.split("-");
  return [iso, `${d}/${m}/${y}`, `${Number(d)} de ${MONTHS[Number(m) - 1]} de ${y}`];
}

function numbersIn(text: string): Set<number> {
  return new Set([...text.matchAll(/\d+(?:\.\d+)?/g)].map((m) => Number(m[0])));
}

test("the same seed gives the same orders; another seed different ones", () => {
  const a = generatePurchaseOrders({ count: 30, seed: 11 });
  assert.deepEqual(generatePurchaseOrders({ count: 30, seed: 11 }), a);
  assert.notDeepEqual(generatePurchaseOrders({ count: 30, seed: 12 }), a);
  // A longer run starts with the same orders (the stream does not depend on count).
  assert.deepEqual(generatePurchaseOrders({ count: 40, seed: 11 }).slice(0, 30), a);
});

test("there are at least 20 phrasings, split into disjoint train and held-out sets", () => {
  const train = new Set(PHRASING_IDS.train);
  const heldout = new Set(PHRASING_IDS.heldout);
  assert.ok(train.size + heldout.size >= 20);
  assert.ok(heldout.size >= 4);
  assert.deepEqual(
    [...train].filter((id) => heldout.has(id)),
    [],
  );
  const usedTrain = new Set(
    generatePurchaseOrders({ count: 200, seed: 1, phrasings: "train" }).map((o) => o.phrasing),
  );
  const usedHeldout = new Set(
    generatePurchaseOrders({ count: 200, seed: 1, phrasings: "heldout" }).map((o) => o.phrasing),
  );
  assert.deepEqual([...usedTrain].sort(), [...train].sort(), "every train phrasing is used");
  assert.deepEqual([...usedHeldout].sort(), [...heldout].sort(), "every held-out phrasing is used");
  // Default is the train set.
  assert.ok(generatePurchaseOrders({ count: 50, seed: 2 }).every((o) => train.has(o.phrasing)));
});

test("held-out texts do not share their wording with training texts", () => {
  // Word 4-grams that occur in held-out texts but never in a large training sample: most must be new.
  const train = wordFourGrams(generatePurchaseOrders({ count: 400, seed: 3, phrasings: "train" }));
  const heldoutOrders = generatePurchaseOrders({ count: 60, seed: 4, phrasings: "heldout" });
  const distinctive = heldoutOrders.filter((o) => {
    const g = wordFourGrams([o]);
    return [...g].some((x) => !train.has(x));
  });
  assert.equal(
    distinctive.length,
    heldoutOrders.length,
    "every held-out text has wording never seen in training",
  );
});

test("every number, SKU, name and date in json_data is stated in the text", () => {
  for (const phrasings of ["train", "heldout"] as const) {
    for (const order of generatePurchaseOrders({ count: 150, seed: 5, phrasings })) {
      const { natural_language: text, json_data: j } = order;
      const numbers = numbersIn(text);
      for (const p of j.productos) {
        assert.ok(Number.isInteger(p.cantidad) && p.cantidad > 0);
        assert.ok(numbers.has(p.cantidad), `${order.phrasing}: cantidad ${p.cantidad} in "${text}"`);
        assert.ok(
          numbers.has(p.precio_unitario),
          `${order.phrasing}: precio ${p.precio_unitario} in "${text}"`,
        );
        assert.ok(text.includes(p.descripcion), p.descripcion);
        if (p.sku) assert.ok(text.includes(p.sku), `${order.phrasing}: sku ${p.sku}`);
        // Prices have at most two decimals, so the text can state them exactly.
        assert.equal(Math.round(p.precio_unitario * 100) / 100, p.precio_unitario);
      }
      assert.ok(text.includes(j.cliente.split(" ")[0].toUpperCase()) || text.includes(j.cliente), j.cliente);
      if (j.empresa)
        assert.ok(text.includes(j.empresa.replace(/\.$/, "")), `${order.phrasing}: ${j.empresa}`);
      if (j.direccion_entrega) assert.ok(text.includes(j.direccion_entrega), j.direccion_entrega);
      if (j.notas) assert.ok(text.toLowerCase().includes(j.notas.slice(1).toLowerCase()), j.notas);
      assert.ok(
        dateForms(j.fecha_entrega).some((f) => text.includes(f)),
        `${order.phrasing}: ${j.fecha_entrega} in "${text}"`,
      );
      assert.match(j.fecha_entrega, /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(["alta", "media", "baja"].includes(j.urgencia));
      assert.ok(["EUR", "USD", "MXN", "COP", "ARS", "CLP", "PEN"].includes(j.moneda));
    }
  }
});

test("orders cover the schema's variety: optional fields, currencies, urgencies, several products", () => {
  const orders = generatePurchaseOrders({ count: 300, seed: 9 }).map((o) => o.json_data);
  assert.ok(new Set(orders.map((o) => o.moneda)).size >= 5);
  assert.equal(new Set(orders.map((o) => o.urgencia)).size, 3);
  assert.ok(orders.some((o) => o.empresa) && orders.some((o) => !o.empresa));
  assert.ok(orders.some((o) => o.notas) && orders.some((o) => o.direccion_entrega));
  assert.ok(orders.some((o) => o.productos.length > 1) && orders.some((o) => o.productos.length === 1));
  assert.ok(
    orders.some((o) => o.productos.some((p) => p.sku)) && orders.some((o) => o.productos.some((p) => !p.sku)),
  );
});

test("writes JSONL rows of {natural_language, json_data}", () => {
  const file = join(mkdtempSync(join(tmpdir(), "tf-po-")), "orders.jsonl");
  const orders = generatePurchaseOrders({ count: 5, seed: 1 });
  writePurchaseOrdersJsonl(file, orders);
  const rows = readFileSync(file, "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(rows.length, 5);
  assert.deepEqual(rows[2], { natural_language: orders[2].natural_language, json_data: orders[2].json_data });
  assert.throws(() => generatePurchaseOrders({ count: -1, seed: 1 }), RangeError);
});
