// Compositional phrasings of a purchase order (the generator's `variety: "rich"`): every field has several
// independent renderings (labelled with a random synonym, separator and case, or in a sentence), fields come in
// a random order, product lines are written quantity-first, product-first, price-first, as labelled fields or as
// table rows, dates in many styles, the currency before, after or apart from the amounts, with greetings,
// sign-offs and filler around. A model trained on these has to find each field wherever and however it is
// written, instead of memorising a few whole-message layouts, which is what lets it generalise to the
// held-out phrasings it never sees.
//
// Honesty rule: nothing here copies a held-out template or its distinctive wording (the SMS's "AQUI",
// "x<qty>", "//" and the joined "<amount><currency name>", the key-value's "cant=", "pu=", "compania=", ...,
// the contract's "Cláusula", the reverse's "en total" / "por unidad" / "Pide", the narrative's and the voice
// note's openings). test/synth checks a list of them never appears.
import type { Rng } from "../data/random.js";
import type { OrderProduct, PurchaseOrder } from "./purchaseOrders.js";

// prettier-ignore
export const MONTHS = [
  "enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
  "noviembre", "diciembre",
];

export interface ComposeInputs {
  order: PurchaseOrder;
  /** The ways this order's currency may be written (code, name, symbol). */
  currencyNames: readonly string[];
  /** The urgency phrase chosen for the order (e.g. "Es urgente"). */
  urgency: string;
  /** Writes an amount exactly as json_data holds it. */
  amount: (value: number) => string;
}

export interface Composed {
  text: string;
  /** The layout family, for the order's phrasing id. */
  layout: "form" | "prose" | "mixed";
}

// Label words of the held-out key-value phrasing: never written with "=" (that would copy its layout).
const HELDOUT_KV_LABELS = new Set([
  "nombre",
  "compania",
  "item",
  "cant",
  "pu",
  "fecha",
  "prioridad",
  "direccion",
]);

const SEPARATORS = [": ", ": ", ": ", " - ", " | ", " -> ", "=", " = ", ":\t"];

/** All date styles; the first three (also used by the whole-message templates) are drawn most often. */
export function formatDateStyle(iso: string, style: number): string {
  const [y, m, d] = iso.split("-").map(Number);
  const dd = String(d).padStart(2, "0");
  const mm = String(m).padStart(2, "0");
  const month = MONTHS[m - 1];
  switch (style) {
    case 0:
      return iso;
    case 1:
      return `${dd}/${mm}/${y}`;
    case 2:
      return `${d} de ${month} de ${y}`;
    case 3:
      return `${d}/${m}/${y}`;
    case 4:
      return `${dd}-${mm}-${y}`;
    case 5:
      return `${dd}.${mm}.${y}`;
    case 6:
      return `${d} de ${month} del ${y}`;
    case 7:
      return `${d} ${month} ${y}`;
    default:
      return `${month.charAt(0).toUpperCase()}${month.slice(1)} ${d}, ${y}`;
  }
}
export const DATE_STYLES = 9;

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

class Composer {
  private readonly sep: string;
  private readonly labelCase: number;
  private readonly money: (v: number) => string;
  /** Set when amounts are written bare and the currency is stated once. */
  readonly currencyApart: string | null;
  readonly cur: string;

  constructor(
    private readonly rng: Rng,
    private readonly inputs: ComposeInputs,
  ) {
    this.sep = rng.pick(SEPARATORS);
    this.labelCase = rng.int(10); // 0-5 as written, 6-7 lower case, 8-9 upper case
    this.cur = rng.pick(inputs.currencyNames);
    const placement = rng.int(10);
    const amount = inputs.amount;
    // Before the amount or joined to it ("EUR 12.50", "12.50€") only for codes and symbols: a name glued to a
    // number is the held-out SMS's quirk, and "dólares 12.50" is not how anyone writes.
    const short = this.cur.length <= 3 || this.cur === "US$";
    this.currencyApart = placement === 9 ? this.cur : null;
    if (placement === 9) this.money = amount;
    else if (placement >= 7 && short) this.money = (v) => `${this.cur} ${amount(v)}`;
    else if (placement === 6 && short) this.money = (v) => `${amount(v)}${this.cur}`;
    else this.money = (v) => `${amount(v)} ${this.cur}`;
  }

  pick<T>(items: readonly T[]): T {
    return this.rng.pick(items);
  }

  chance(p: number): boolean {
    return this.rng.next() < p;
  }

  /** A label with the message's separator, in the message's case. */
  label(words: readonly string[], value: string): string {
    let word = this.pick(words);
    if (this.labelCase >= 8) word = word.toUpperCase();
    else if (this.labelCase >= 6) word = word.toLowerCase();
    let sep = this.sep;
    // "Nivel de prioridad=" would still end like the held-out "prioridad=", so any of its words counts.
    const parts = word
      .toLowerCase()
      .normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "")
      .split(/[^a-z]+/);
    if (sep.trim() === "=" && parts.some((w) => HELDOUT_KV_LABELS.has(w))) sep = ": ";
    return `${word}${sep}${value}`;
  }

  productName(p: OrderProduct): string {
    if (!p.sku) return p.descripcion;
    return this.pick([
      `${p.descripcion} (SKU ${p.sku})`,
      `${p.descripcion} (SKU ${p.sku})`,
      `${p.descripcion} [${p.sku}]`,
      `${p.descripcion}, ref. ${p.sku}`,
      `${p.descripcion} (código ${p.sku})`,
      `${p.sku} ${p.descripcion}`,
      `${p.descripcion} - SKU: ${p.sku}`,
    ]);
  }

  qty(q: number): string {
    const one = q === 1;
    return this.pick([
      `${q}`,
      `${q} ${one ? "unidad" : "unidades"}`,
      `${q} ${one ? "ud." : "uds."}`,
      `${q} ${one ? "pieza" : "piezas"}`,
      `cantidad ${q}`,
      `${q} u.`,
    ]);
  }

  price(v: number): string {
    const m = this.money(v);
    return this.pick([
      `a ${m}`,
      `${m} c/u`,
      `a ${m} cada uno`,
      `${m} cada una`,
      `a ${m} la unidad`,
      `${m}/ud.`,
      `precio unitario ${m}`,
      `p. unit. ${m}`,
      `@ ${m}`,
      `por ${m} cada uno`,
      `valor unitario ${m}`,
      `(${m} c/u)`,
    ]);
  }

  /** Product lines, and whether they are labelled fields or table rows (which never run into a sentence). */
  productLines(): { lines: string[]; tabular: boolean } {
    const { productos } = this.inputs.order;
    const style = this.rng.int(6);
    if (style === 4) {
      // Labelled fields in a random order, the same for every line.
      const fsep = this.pick([" | ", "; ", ", ", " / ", " - "]);
      const order = this.rng.shuffle([0, 1, 2]);
      const pl = this.pick(["Producto", "Artículo", "Descripción", "Material", "Concepto", "Referencia"]);
      const ql = this.pick(["Cantidad", "Unidades", "Uds", "Cantidad pedida", "Qty"]);
      const vl = this.pick([
        "Precio unitario",
        "Precio",
        "P. unitario",
        "Valor unitario",
        "Importe unitario",
      ]);
      const lines = productos.map((p) => {
        const parts = [
          this.label([pl], this.productName(p)),
          this.label([ql], String(p.cantidad)),
          this.label([vl], this.money(p.precio_unitario)),
        ];
        return order.map((i) => parts[i]).join(fsep);
      });
      return { lines, tabular: true };
    }
    if (style === 5) {
      // A table: a header, then one row a product, columns in a random order.
      const csep = this.pick([" | ", " ; ", "\t", " / "]);
      const order = this.rng.shuffle([0, 1, 2]);
      const header = [
        this.pick(["Producto", "Artículo", "Descripción", "Concepto"]),
        this.pick(["Cantidad", "Unidades", "Uds."]),
        this.pick(["Precio unitario", "Precio", "P. unit.", "Valor"]),
      ];
      const rows = productos.map((p) => {
        const cells = [this.productName(p), String(p.cantidad), this.money(p.precio_unitario)];
        return order.map((i) => cells[i]).join(csep);
      });
      return { lines: [order.map((i) => header[i]).join(csep), ...rows], tabular: true };
    }
    const variant = this.rng.int(3);
    const lines = productos.map((p) => {
      const name = this.productName(p);
      const q = this.qty(p.cantidad);
      const pr = this.price(p.precio_unitario);
      if (style <= 1) {
        // Quantity first.
        if (variant === 0) return `${q} de ${name} ${pr}`;
        if (variant === 1) return `${q} ${name}, ${pr}`;
        return `${q} - ${name} - ${pr}`;
      }
      // Product first.
      if (variant === 0) return `${name}: ${q}, ${pr}`;
      if (variant === 1) return `${name} - ${q} - ${pr}`;
      return `${name} (${q}) ${pr}`;
    });
    return { lines, tabular: false };
  }

  /** Price first for some orders: the amount leads, then quantity and product. */
  priceFirstLines(): string[] {
    return this.inputs.order.productos.map(
      (p) =>
        `${this.pick(["a", "por"])} ${this.money(p.precio_unitario)} ${this.pick(["la unidad", "cada uno", "c/u"])}, ${this.qty(p.cantidad)} de ${this.productName(p)}`,
    );
  }

  productsBlock(asProse: boolean): string {
    const { lines, tabular } = this.chance(0.12)
      ? { lines: this.priceFirstLines(), tabular: false }
      : this.productLines();
    if (asProse && !tabular && lines.length <= 3 && this.chance(0.7)) {
      const lead = this.pick([
        "Necesitamos",
        "Quiero pedir",
        "Solicito",
        "Favor de enviar",
        "Me envían",
        "Queremos comprar",
        "Requerimos",
        "Por favor despachar",
        "El pedido es",
        "Les encargo",
      ]);
      const joined =
        lines.length === 1
          ? lines[0]
          : this.chance(0.5)
            ? `${lines.slice(0, -1).join(", ")} y ${lines[lines.length - 1]}`
            : lines.join("; ");
      return `${lead} ${joined}.`;
    }
    // A table keeps its header and rows unbulleted.
    const bullet =
      tabular && lines.length > this.inputs.order.productos.length
        ? ""
        : this.pick(["- ", "* ", "• ", "", "#", "n. ", "n) "]);
    const body = lines.map((l, i) => {
      if (bullet === "#") return `#${i + 1} ${l}`;
      if (bullet.startsWith("n")) return `${i + 1}${bullet.slice(1)}${l}`;
      return `${bullet}${l}`;
    });
    const header = this.chance(0.8)
      ? this.pick([
          "Productos:",
          "Artículos:",
          "Detalle:",
          "Pedido:",
          "Material solicitado:",
          "Lista:",
          "Necesito lo siguiente:",
          "Les pido:",
          "Solicitamos:",
        ])
      : "";
    const head = this.labelCase >= 8 ? header.toUpperCase() : header;
    return [head, ...body].filter(Boolean).join("\n");
  }

  client(asProse: boolean, withCompany: boolean): string {
    const { cliente, empresa } = this.inputs.order;
    const who =
      withCompany && empresa
        ? this.pick([
            `${cliente} de ${empresa}`,
            `${cliente} (${empresa})`,
            `${cliente}, ${empresa}`,
            `${cliente} - ${empresa}`,
            `${cliente} en representación de ${empresa}`,
            `${cliente}, por parte de ${empresa}`,
            `${cliente} / ${empresa}`,
          ])
        : cliente;
    if (!asProse)
      return this.label(
        [
          "Cliente",
          "Contacto",
          "Solicitante",
          "Comprador",
          "Responsable",
          "Pedido por",
          "Remitente",
          "Atención",
        ],
        who,
      );
    return this.pick([
      `Soy ${who}.`,
      `Le escribe ${who}.`,
      `Les escribe ${who}.`,
      `Habla ${who}.`,
      `Atte. ${who}`,
      `Saludos, ${who}`,
      `Firmado: ${who}`,
      `Un saludo de ${who}.`,
      `Quien solicita es ${who}.`,
    ]);
  }

  company(asProse: boolean): string {
    const e = this.inputs.order.empresa!;
    if (!asProse) return this.label(["Empresa", "Razón social", "Organización", "Entidad", "Cuenta"], e);
    return this.pick([`Empresa: ${e}.`, `Trabajo en ${e}.`, `Es para ${e}.`, `Pedido a cargo de ${e}.`]);
  }

  date(asProse: boolean): string {
    // The three common styles two times in three, then any of the others.
    const style = this.chance(0.67) ? this.rng.int(3) : this.rng.int(DATE_STYLES);
    const d = formatDateStyle(this.inputs.order.fecha_entrega, style);
    if (!asProse)
      return this.label(
        ["Fecha de entrega", "Entrega", "Fecha límite", "Plazo", "Entregar el", "Fecha requerida", "Fecha"],
        d,
      );
    return this.pick([
      `Para el ${d}.`,
      `Antes del ${d}.`,
      `Lo necesitamos el ${d}.`,
      `Con entrega el ${d}.`,
      `Que llegue el ${d}.`,
      `Fecha tope: ${d}.`,
      `El ${d} como muy tarde.`,
      `Entrega el ${d}.`,
    ]);
  }

  urgency(asProse: boolean): string {
    const c = this.rng.int(10);
    const u =
      c >= 8
        ? this.inputs.urgency.toUpperCase()
        : c >= 6
          ? lowerFirst(this.inputs.urgency)
          : this.inputs.urgency;
    if (!asProse) return this.label(["Urgencia", "Prioridad", "Nivel de prioridad", "Importancia"], u);
    return this.pick([`${cap(u)}.`, `(${u})`, `${cap(u)}!`, `Ojo: ${lowerFirst(u)}.`, `${cap(u)}, gracias.`]);
  }

  address(asProse: boolean): string {
    const a = this.inputs.order.direccion_entrega!;
    if (!asProse)
      return this.label(
        [
          "Dirección de entrega",
          "Dirección",
          "Entregar en",
          "Destino",
          "Enviar a",
          "Lugar de entrega",
          "Domicilio",
        ],
        a,
      );
    return this.pick([
      `Enviar a ${a}.`,
      `La entrega es en ${a}.`,
      `Entregar en ${a}.`,
      `Dejarlo en ${a}.`,
      `Mandar a ${a}.`,
      `Destino: ${a}.`,
    ]);
  }

  notes(asProse: boolean): string {
    const n = this.inputs.order.notas!;
    if (!asProse)
      return this.label(["Nota", "Notas", "Observaciones", "Obs.", "Importante", "Indicaciones"], n);
    return this.pick([
      n,
      `Por cierto, ${lowerFirst(n)}`,
      `Otra cosa: ${n}`,
      `P.D.: ${n}`,
      `Y ${lowerFirst(n)}`,
    ]);
  }

  currency(asProse: boolean): string {
    const c = this.currencyApart!;
    if (!asProse) return this.label(["Moneda", "Divisa", "Precios en"], c);
    return this.pick([
      `Precios en ${c}.`,
      `Todo en ${c}.`,
      `(importes en ${c})`,
      `Los precios están en ${c}.`,
    ]);
  }
}

const GREETINGS = [
  "Hola,",
  "Buenos días,",
  "Buenas,",
  "Estimados:",
  "Hola equipo!",
  "Qué tal,",
  "Buen día.",
  "Buenas tardes:",
  "Saludos.",
];
const FILLER = [
  "Gracias de antemano.",
  "Quedo atento.",
  "Cualquier duda me dicen.",
  "Un abrazo.",
  "Confirmen recepción por favor.",
  "Espero su respuesta.",
  "Gracias!",
  "Muchas gracias.",
];

/** One order written by randomly composed field renderings; every json_data value appears in the text. */
export function composeOrder(rng: Rng, inputs: ComposeInputs): Composed {
  const c = new Composer(rng, inputs);
  const o = inputs.order;
  const layout = c.pick(["form", "prose", "mixed"] as const);
  const prose = () => (layout === "form" ? false : layout === "prose" ? true : c.chance(0.5));
  const companyApart = !!o.empresa && c.chance(0.4);

  const fields: string[] = [c.productsBlock(prose()), c.date(prose()), c.urgency(prose())];
  if (companyApart) fields.push(c.company(prose()));
  if (o.direccion_entrega) fields.push(c.address(prose()));
  if (o.notas) fields.push(c.notes(prose()));
  if (c.currencyApart) fields.push(c.currency(prose()));
  const body = rng.shuffle(fields);
  // The client leads (a header or introduction) or signs at the end.
  const client = c.client(prose(), !companyApart);
  if (c.chance(0.6)) body.unshift(client);
  else body.push(client);
  if (c.chance(0.4)) body.unshift(c.pick(GREETINGS));
  if (c.chance(0.35)) body.splice(body.length - (c.chance(0.5) ? 1 : 0), 0, c.pick(FILLER));

  const joiner =
    layout === "form" ? "\n" : layout === "prose" ? c.pick([" ", " ", "\n"]) : c.pick(["\n", " "]);
  // Run into one paragraph, a labelled field ends with a period so the next one reads as a new sentence.
  const parts = joiner === " " ? body.map((f) => (/[.!?:)]$/.test(f) ? f : `${f}.`)) : body;
  return { text: parts.join(joiner), layout };
}
