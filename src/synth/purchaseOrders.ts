// A seeded generator of Spanish purchase orders (free text) paired with their structured JSON, for the
// json-extraction example and its evaluation demo. Phrasing templates are split into a training set and
// a held-out set so the evaluation can measure generalisation to wordings the model never saw.
//
// json_data schema (every value is stated in the text; optional keys appear only when the text has them):
//   {
//     cliente: string,                       // the person ordering
//     empresa?: string,                      // their company
//     productos: [{ sku?: string, descripcion: string, cantidad: integer, precio_unitario: number }],
//     moneda: "EUR" | "USD" | "MXN" | "COP" | "ARS" | "CLP" | "PEN",
//     urgencia: "alta" | "media" | "baja",
//     fecha_entrega: "YYYY-MM-DD",
//     direccion_entrega?: string,
//     notas?: string
//   }
// Numbers in the text are written exactly as in json_data (dot decimals, no thousands separators).
import { createRng, type Rng } from "../data/random.js";
import { writeFileAtomic } from "../store/atomic.js";
import { composeOrder, MONTHS } from "./orderComposer.js";

export type Currency = "EUR" | "USD" | "MXN" | "COP" | "ARS" | "CLP" | "PEN";
export type Urgency = "alta" | "media" | "baja";

export interface OrderProduct {
  sku?: string;
  descripcion: string;
  cantidad: number;
  precio_unitario: number;
}

export interface PurchaseOrder {
  cliente: string;
  empresa?: string;
  productos: OrderProduct[];
  moneda: Currency;
  urgencia: Urgency;
  fecha_entrega: string;
  direccion_entrega?: string;
  notas?: string;
}

export interface GeneratedOrder {
  natural_language: string;
  json_data: PurchaseOrder;
  /** Id of the phrasing template that wrote the text. */
  phrasing: string;
}

export type PhrasingSet = "train" | "heldout";

export interface GenerateOptions {
  count: number;
  seed: number;
  /** Which phrasing templates to draw from (default "train"). */
  phrasings?: PhrasingSet;
  /**
   * Training phrasings only. "templates" (default): the whole-message training templates. "rich": a share of
   * those, the rest composed field by field (src/synth/orderComposer.ts), so the wording varies far more.
   */
  variety?: PhrasingVariety;
}

export type PhrasingVariety = "templates" | "rich";

/** With `variety: "rich"`, the share of orders still written by a whole-message template. */
export const RICH_TEMPLATE_SHARE = 1 / 3;

// ---------------------------------------------------------------------------------------------------
// Vocabulary

const CATALOG: { sku: string; descripcion: string; min: number; max: number }[] = [
  { sku: "PAP-A4-500", descripcion: "resma de papel bond A4", min: 3, max: 9 },
  { sku: "BOL-AZ-12", descripcion: "caja de bolígrafos azules", min: 2, max: 8 },
  { sku: "TON-HP-85A", descripcion: "tóner HP 85A", min: 40, max: 95 },
  { sku: "SIL-ERG-01", descripcion: "silla ergonómica de oficina", min: 90, max: 320 },
  { sku: "MON-24-FHD", descripcion: "monitor de 24 pulgadas Full HD", min: 110, max: 260 },
  { sku: "TEC-USB-ES", descripcion: "teclado USB en español", min: 12, max: 45 },
  { sku: "RAT-INAL-2", descripcion: "ratón inalámbrico", min: 8, max: 35 },
  { sku: "CAB-HDMI-2M", descripcion: "cable HDMI de 2 metros", min: 4, max: 15 },
  { sku: "DIS-SSD-1TB", descripcion: "disco SSD de 1 TB", min: 55, max: 140 },
  { sku: "GUA-NIT-M", descripcion: "caja de guantes de nitrilo talla M", min: 6, max: 18 },
  { sku: "CAS-SEG-BL", descripcion: "casco de seguridad blanco", min: 9, max: 30 },
  { sku: "TOR-M8-100", descripcion: "bolsa de tornillos M8 (100 piezas)", min: 5, max: 16 },
  { sku: "TAL-PER-18V", descripcion: "taladro percutor de 18 V", min: 70, max: 190 },
  { sku: "CIN-EMB-48", descripcion: "rollo de cinta de embalaje de 48 mm", min: 1, max: 5 },
  { sku: "CAJ-CAR-60", descripcion: "caja de cartón de 60 x 40 cm", min: 1, max: 4 },
  { sku: "PAL-MAD-EU", descripcion: "palé de madera europeo", min: 8, max: 25 },
  { sku: "CAF-GR-1K", descripcion: "bolsa de café en grano de 1 kg", min: 9, max: 28 },
  { sku: "AGU-500-24", descripcion: "paquete de 24 botellas de agua de 500 ml", min: 4, max: 12 },
  { sku: "DET-IND-5L", descripcion: "garrafa de detergente industrial de 5 litros", min: 7, max: 22 },
  { sku: "PAP-HIG-48", descripcion: "paquete de 48 rollos de papel higiénico", min: 12, max: 35 },
  { sku: "LAM-LED-9W", descripcion: "lámpara LED de 9 W", min: 2, max: 9 },
  { sku: "EXT-PQS-6K", descripcion: "extintor de polvo químico de 6 kg", min: 25, max: 70 },
  { sku: "ROU-WIFI-6", descripcion: "router WiFi 6", min: 45, max: 160 },
  { sku: "IMP-LAS-MN", descripcion: "impresora láser monocromo", min: 120, max: 380 },
  { sku: "CUA-A5-100", descripcion: "cuaderno A5 de 100 hojas", min: 1, max: 6 },
  { sku: "MAS-FFP2-20", descripcion: "caja de 20 mascarillas FFP2", min: 6, max: 20 },
];

// prettier-ignore
const FIRST_NAMES = [
  "María", "José", "Lucía", "Carlos", "Ana", "Javier", "Valentina", "Andrés", "Camila", "Diego", "Sofía",
  "Miguel", "Daniela", "Alejandro", "Paula", "Fernando", "Gabriela", "Ricardo", "Elena", "Mateo",
];
// prettier-ignore
const LAST_NAMES = [
  "García", "Rodríguez", "Martínez", "López", "Hernández", "González", "Pérez", "Sánchez", "Ramírez",
  "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Vargas", "Castillo", "Morales", "Ortiz", "Romero",
  "Navarro",
];
// prettier-ignore
const COMPANIES = [
  "Distribuidora del Norte S.A. de C.V.", "Construcciones Andinas S.A.S.", "Papelería Central S.L.",
  "Logística Pacífico S.A.", "Clínica San Rafael", "Hotel Las Palmeras", "Colegio Miraflores",
  "Ferretería El Tornillo", "Tecnologías Quetzal S.A. de C.V.", "Cafetería La Esquina",
  "Grupo Industrial Sur S.A.", "Agroexportadora Valle Verde", "Estudio Jurídico Paredes & Asociados",
  "Inmobiliaria Horizonte S.L.", "Transportes Rápidos del Bajío",
];
const ADDRESSES: { text: string; currency: Currency }[] = [
  { text: "Av. Insurgentes Sur 1602, Col. Crédito Constructor, Ciudad de México", currency: "MXN" },
  { text: "Calle Morelos 45, Centro, Guadalajara, Jalisco", currency: "MXN" },
  { text: "Carrera 7 # 71-21, Bogotá", currency: "COP" },
  { text: "Calle 10 # 43E-31, El Poblado, Medellín", currency: "COP" },
  { text: "Calle de Alcalá 120, 28009 Madrid", currency: "EUR" },
  { text: "Passeig de Gràcia 55, 08007 Barcelona", currency: "EUR" },
  { text: "Av. Corrientes 1234, Buenos Aires", currency: "ARS" },
  { text: "Av. Providencia 2133, Providencia, Santiago", currency: "CLP" },
  { text: "Av. Javier Prado Este 4200, Surco, Lima", currency: "PEN" },
  { text: "Brickell Ave 801, Miami, FL", currency: "USD" },
];
const NOTES = [
  "Por favor facturar a nombre de la empresa.",
  "Entregar en horario de 9:00 a 14:00.",
  "Llamar antes de la entrega.",
  "Incluir factura electrónica en el envío.",
  "El acceso es por el muelle de carga trasero.",
  "No dejar el pedido en recepción.",
];
const CURRENCY_NAMES: Record<Currency, string[]> = {
  EUR: ["EUR", "euros", "€"],
  USD: ["USD", "dólares", "US$"],
  MXN: ["MXN", "pesos mexicanos"],
  COP: ["COP", "pesos colombianos"],
  ARS: ["ARS", "pesos argentinos"],
  CLP: ["CLP", "pesos chilenos"],
  PEN: ["PEN", "soles"],
};
// Prices in these currencies have no cents and are large (the catalog is in euros).
const WHOLE_CURRENCY_RATE: Partial<Record<Currency, number>> = { COP: 4300, CLP: 950, ARS: 900 };
const CENT_CURRENCY_RATE: Partial<Record<Currency, number>> = { EUR: 1, USD: 1.1, MXN: 19, PEN: 4 };

const URGENCY_PHRASES: Record<Urgency, string[]> = {
  alta: [
    "Es urgente",
    "Lo necesitamos con urgencia",
    "Es prioritario",
    "Por favor, máxima prioridad",
    "Urge",
  ],
  media: ["Prioridad normal", "Sin urgencia especial, pero en la fecha acordada", "Prioridad media"],
  baja: ["No corre prisa", "Prioridad baja", "Sin prisa"],
};

// ---------------------------------------------------------------------------------------------------
// Rendering helpers shared by the phrasing templates

/** Writes a number exactly as it appears in json_data. */
export function formatAmount(value: number, currency: Currency): string {
  return WHOLE_CURRENCY_RATE[currency] ? String(value) : value.toFixed(2);
}

function formatDate(iso: string, style: "long" | "slash" | "iso"): string {
  const [y, m, d] = iso.split("-").map(Number);
  if (style === "iso") return iso;
  if (style === "slash") return `${String(d).padStart(2, "0")}/${String(m).padStart(2, "0")}/${y}`;
  return `${d} de ${MONTHS[m - 1]} de ${y}`;
}

interface Ctx {
  o: PurchaseOrder;
  cur: string;
  date: string;
  urgency: string;
}

function productName(p: OrderProduct): string {
  return p.sku ? `${p.descripcion} (SKU ${p.sku})` : p.descripcion;
}

function dashList(c: Ctx, bullet = "- "): string {
  return c.o.productos
    .map(
      (p) =>
        `${bullet}${p.cantidad} x ${productName(p)} a ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur} c/u`,
    )
    .join("\n");
}

function inlineList(c: Ctx): string {
  const parts = c.o.productos.map(
    (p) =>
      `${p.cantidad} ${p.cantidad === 1 ? "unidad" : "unidades"} de ${productName(p)} a ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur} cada una`,
  );
  return parts.length === 1 ? parts[0] : `${parts.slice(0, -1).join(", ")} y ${parts[parts.length - 1]}`;
}

function from(c: Ctx): string {
  return c.o.empresa ? `${c.o.cliente}, de ${c.o.empresa}` : c.o.cliente;
}

const addr = (c: Ctx, lead: string) => (c.o.direccion_entrega ? `${lead}${c.o.direccion_entrega}.` : "");
const notes = (c: Ctx, lead = "Nota: ") => (c.o.notas ? `${lead}${c.o.notas}` : "");
const lines = (...parts: string[]) => parts.filter((p) => p.length > 0).join("\n");
const sentence = (...parts: string[]) => parts.filter((p) => p.length > 0).join(" ");

interface Phrasing {
  id: string;
  dateStyle: "long" | "slash" | "iso";
  render: (c: Ctx) => string;
}

// ---------------------------------------------------------------------------------------------------
// Phrasing templates. TRAIN_PHRASINGS teach the task; HELDOUT_PHRASINGS are only used for evaluation.

const TRAIN_PHRASINGS: Phrasing[] = [
  {
    id: "email-formal",
    dateStyle: "long",
    render: (c) =>
      lines(
        "Estimados señores:",
        "",
        `Por medio de la presente les solicitamos el siguiente pedido:`,
        dashList(c),
        "",
        `Fecha de entrega requerida: ${c.date}. ${c.urgency}.`,
        addr(c, "Dirección de entrega: "),
        notes(c),
        "",
        "Atentamente,",
        c.o.cliente,
        c.o.empresa ?? "",
      ),
  },
  {
    id: "whatsapp-short",
    dateStyle: "slash",
    render: (c) =>
      sentence(
        `Hola! soy ${c.o.cliente}${c.o.empresa ? ` de ${c.o.empresa}` : ""}.`,
        `Me mandan ${inlineList(c)}?`,
        `Para el ${c.date} porfa. ${c.urgency} 🙏`,
        addr(c, "Es para "),
        notes(c, ""),
      ),
  },
  {
    id: "run-on",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `Buenas tardes, les escribe ${from(c)} y quería hacer un pedido de ${inlineList(c)} y lo necesitaría para el ${c.date}`,
        `y bueno, ${c.urgency.toLowerCase()}${c.o.direccion_entrega ? ` y la entrega sería en ${c.o.direccion_entrega}` : ""}, gracias.`,
        notes(c, ""),
      ),
  },
  {
    id: "list-header",
    dateStyle: "iso",
    render: (c) =>
      lines(
        `PEDIDO DE COMPRA`,
        `Cliente: ${c.o.cliente}`,
        c.o.empresa ? `Empresa: ${c.o.empresa}` : "",
        `Moneda: ${c.o.moneda}`,
        "Artículos:",
        dashList(c, "* "),
        `Entrega: ${c.date}`,
        `Urgencia: ${c.urgency}`,
        c.o.direccion_entrega ? `Dirección: ${c.o.direccion_entrega}` : "",
        notes(c, "Observaciones: "),
      ),
  },
  {
    id: "phone-transcript",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `[Transcripción de llamada] El cliente ${c.o.cliente}${c.o.empresa ? ` (${c.o.empresa})` : ""} pide ${inlineList(c)}.`,
        `Quiere recibirlo el ${c.date}. ${c.urgency}.`,
        addr(c, "Dirección indicada: "),
        notes(c),
      ),
  },
  {
    id: "polite-request",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `¿Serían tan amables de enviarnos ${inlineList(c)}?`,
        `Necesitamos la mercancía antes del ${c.date}. ${c.urgency}.`,
        addr(c, "Enviar a "),
        notes(c),
        `Un saludo, ${from(c)}.`,
      ),
  },
  {
    id: "numbered-list",
    dateStyle: "slash",
    render: (c) =>
      lines(
        `Pedido de ${from(c)}:`,
        ...c.o.productos.map(
          (p, i) =>
            `${i + 1}) ${productName(p)}: cantidad ${p.cantidad}, precio unitario ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur}`,
        ),
        `Fecha límite: ${c.date} (${c.urgency.toLowerCase()})`,
        addr(c, "Entregar en "),
        notes(c),
      ),
  },
  {
    id: "boss-forward",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `Reenvío lo que me pidió ${c.o.cliente}${c.o.empresa ? ` de ${c.o.empresa}` : ""}: ${inlineList(c)}.`,
        `Lo quiere para el ${c.date}. ${c.urgency}.`,
        addr(c, "Va a "),
        notes(c),
      ),
  },
  {
    id: "table-like",
    dateStyle: "iso",
    render: (c) =>
      lines(
        `Solicitante: ${c.o.cliente}${c.o.empresa ? ` | ${c.o.empresa}` : ""}`,
        "Cant. | Artículo | Precio unit.",
        ...c.o.productos.map(
          (p) =>
            `${p.cantidad} | ${productName(p)} | ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur}`,
        ),
        `Entrega: ${c.date} | ${c.urgency}`,
        c.o.direccion_entrega ? `Lugar: ${c.o.direccion_entrega}` : "",
        notes(c),
      ),
  },
  {
    id: "casual-email",
    dateStyle: "long",
    render: (c) =>
      lines(
        "Hola equipo,",
        `Les paso el pedido: ${inlineList(c)}.`,
        `Lo ideal es tenerlo el ${c.date}. ${c.urgency}.`,
        addr(c, "La dirección es "),
        notes(c),
        "Gracias!",
        c.o.cliente + (c.o.empresa ? ` - ${c.o.empresa}` : ""),
      ),
  },
  {
    id: "terse-command",
    dateStyle: "slash",
    render: (c) =>
      sentence(
        `Pedido: ${c.o.productos.map((p) => `${p.cantidad} ${productName(p)} @ ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur}`).join("; ")}.`,
        `Entrega ${c.date}. ${c.urgency}. Cliente: ${from(c)}.`,
        addr(c, "Dir: "),
        notes(c),
      ),
  },
  {
    id: "quote-confirmation",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `Confirmamos la cotización y queremos proceder con la compra de ${inlineList(c)}.`,
        `La entrega debe realizarse el ${c.date}. ${c.urgency}.`,
        addr(c, "Lugar de entrega: "),
        notes(c),
        `Firma: ${from(c)}.`,
      ),
  },
  {
    id: "whatsapp-multi",
    dateStyle: "slash",
    render: (c) =>
      lines(
        `buenas 👋 soy ${c.o.cliente}`,
        c.o.empresa ? `de ${c.o.empresa}` : "",
        "necesito:",
        ...c.o.productos.map(
          (p) =>
            `${p.cantidad} ${productName(p)} (${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur} c/u)`,
        ),
        `pa el ${c.date}`,
        c.urgency.toLowerCase(),
        c.o.direccion_entrega ? `mandar a ${c.o.direccion_entrega}` : "",
        notes(c, ""),
      ),
  },
  {
    id: "purchase-dept",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `El departamento de compras${c.o.empresa ? ` de ${c.o.empresa}` : ""} autoriza la adquisición de ${inlineList(c)}.`,
        `Responsable: ${c.o.cliente}. Fecha de entrega: ${c.date}. ${c.urgency}.`,
        addr(c, "Dirección de entrega: "),
        notes(c),
      ),
  },
  {
    id: "reorder",
    dateStyle: "iso",
    render: (c) =>
      sentence(
        `Hola, soy ${from(c)}. Quiero repetir pedido pero esta vez: ${inlineList(c)}.`,
        `Fecha: ${c.date}. ${c.urgency}.`,
        addr(c, "Misma dirección de siempre: "),
        notes(c),
      ),
  },
  {
    id: "question-form",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `¿Me pueden confirmar si pueden entregar ${inlineList(c)} el ${c.date}?`,
        `${c.urgency}.`,
        addr(c, "Sería en "),
        notes(c),
        `Soy ${from(c)}.`,
      ),
  },
  {
    id: "memo",
    dateStyle: "slash",
    render: (c) =>
      lines(
        "MEMORÁNDUM",
        `De: ${c.o.cliente}`,
        c.o.empresa ? `Empresa: ${c.o.empresa}` : "",
        "Asunto: solicitud de compra",
        `Se solicita: ${inlineList(c)}.`,
        `Plazo: ${c.date}. ${c.urgency}.`,
        addr(c, "Entrega en: "),
        notes(c),
      ),
  },
];

const HELDOUT_PHRASINGS: Phrasing[] = [
  {
    id: "heldout-narrative",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `Ayer hablé con ${c.o.cliente}${c.o.empresa ? `, que trabaja en ${c.o.empresa},` : ""} y me comentó que les hacen falta ${inlineList(c)}.`,
        `Me dijo que el plazo es el ${c.date} y que ${c.urgency.toLowerCase()}.`,
        addr(c, "Hay que llevarlo a "),
        notes(c, "Además: "),
      ),
  },
  {
    id: "heldout-reverse",
    dateStyle: "iso",
    render: (c) =>
      sentence(
        `${c.urgency}: para el ${c.date}${c.o.direccion_entrega ? `, en ${c.o.direccion_entrega},` : ""} necesitamos`,
        `${c.o.productos.map((p) => `${productName(p)}, ${p.cantidad} en total, precio ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur} por unidad`).join("; ")}.`,
        `Pide ${from(c)}.`,
        notes(c),
      ),
  },
  {
    id: "heldout-sms",
    dateStyle: "slash",
    render: (c) =>
      sentence(
        `${c.o.cliente.split(" ")[0].toUpperCase()} AQUI${c.o.empresa ? ` (${c.o.empresa})` : ""}.`,
        c.o.productos
          .map(
            (p) =>
              `${productName(p)} x${p.cantidad} a ${formatAmount(p.precio_unitario, c.o.moneda)}${c.cur}`,
          )
          .join(" + "),
        `// ${c.date} // ${c.urgency.toUpperCase()}`,
        c.o.direccion_entrega ? `// ${c.o.direccion_entrega}` : "",
        c.o.notas ? `// ${c.o.notas}` : "",
        `(cliente: ${c.o.cliente})`,
      ),
  },
  {
    id: "heldout-contract",
    dateStyle: "long",
    render: (c) =>
      lines(
        `ORDEN DE COMPRA. Entre el proveedor y ${from(c)} se acuerda el suministro de:`,
        ...c.o.productos.map(
          (p, i) =>
            `Cláusula ${i + 1}. El proveedor entregará ${p.cantidad} ${p.cantidad === 1 ? "unidad" : "unidades"} de ${productName(p)} al precio unitario de ${formatAmount(p.precio_unitario, c.o.moneda)} ${c.cur}.`,
        ),
        `El suministro se efectuará a más tardar el ${c.date}. ${c.urgency}.`,
        addr(c, "Lugar de entrega: "),
        notes(c, "Condición adicional: "),
      ),
  },
  {
    id: "heldout-voice-note",
    dateStyle: "long",
    render: (c) =>
      sentence(
        `eh hola qué tal, mira te dejo un audio, soy ${c.o.cliente}${c.o.empresa ? ` de ${c.o.empresa}` : ""}, eh necesito ${inlineList(c)},`,
        `y pues para el ${c.date} si se puede, ${c.urgency.toLowerCase()},`,
        c.o.direccion_entrega ? `lo mandas a ${c.o.direccion_entrega},` : "",
        c.o.notas ? `ah y ${c.o.notas.charAt(0).toLowerCase()}${c.o.notas.slice(1)}` : "",
        "vale, chao.",
      ),
  },
  {
    id: "heldout-key-value",
    dateStyle: "iso",
    render: (c) =>
      lines(
        `nombre=${c.o.cliente}`,
        c.o.empresa ? `compania=${c.o.empresa}` : "",
        ...c.o.productos.map(
          (p) =>
            `item=${productName(p)}; cant=${p.cantidad}; pu=${formatAmount(p.precio_unitario, c.o.moneda)}; ${c.cur}`,
        ),
        `fecha=${c.date}`,
        `prioridad=${c.urgency}`,
        c.o.direccion_entrega ? `direccion=${c.o.direccion_entrega}` : "",
        c.o.notas ? `comentario=${c.o.notas}` : "",
      ),
  },
];

export const PHRASING_IDS: Readonly<Record<PhrasingSet, readonly string[]>> = {
  train: TRAIN_PHRASINGS.map((p) => p.id),
  heldout: HELDOUT_PHRASINGS.map((p) => p.id),
};

// ---------------------------------------------------------------------------------------------------
// Order generation

const BASE_DATE = Date.UTC(2025, 0, 6); // fixed, so the output never depends on today's date

function randomOrder(rng: Rng): PurchaseOrder {
  const address = rng.pick(ADDRESSES);
  // Mostly the currency of the delivery city; sometimes USD/EUR, as in real cross-border orders.
  const moneda: Currency = rng.next() < 0.8 ? address.currency : rng.pick(["USD", "EUR"] as const);
  const count = 1 + rng.int(rng.next() < 0.5 ? 2 : 4);
  const items = rng.shuffle(CATALOG).slice(0, count);
  const productos = items.map((item): OrderProduct => {
    const euros = item.min + rng.next() * (item.max - item.min);
    const whole = WHOLE_CURRENCY_RATE[moneda];
    const precio = whole
      ? Math.round((euros * whole) / 100) * 100
      : Math.round(euros * (CENT_CURRENCY_RATE[moneda] ?? 1) * 100) / 100;
    const cantidad = rng.pick([
      1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 24, 25, 30, 40, 50, 60, 75, 100, 120, 150, 200,
    ]);
    const p: OrderProduct = { descripcion: item.descripcion, cantidad, precio_unitario: precio };
    return rng.next() < 0.6 ? { sku: item.sku, ...p } : p;
  });
  const days = 2 + rng.int(120);
  const order: PurchaseOrder = {
    cliente: `${rng.pick(FIRST_NAMES)} ${rng.pick(LAST_NAMES)}`,
    productos,
    moneda,
    urgencia: rng.pick(["alta", "media", "baja"] as const),
    fecha_entrega: new Date(BASE_DATE + days * 86_400_000).toISOString().slice(0, 10),
  };
  if (rng.next() < 0.7) order.empresa = rng.pick(COMPANIES);
  if (rng.next() < 0.6) order.direccion_entrega = address.text;
  if (rng.next() < 0.3) order.notas = rng.pick(NOTES);
  // A fixed key order keeps the JSON the model learns to emit stable.
  return {
    cliente: order.cliente,
    ...(order.empresa ? { empresa: order.empresa } : {}),
    productos: order.productos,
    moneda: order.moneda,
    urgencia: order.urgencia,
    fecha_entrega: order.fecha_entrega,
    ...(order.direccion_entrega ? { direccion_entrega: order.direccion_entrega } : {}),
    ...(order.notas ? { notas: order.notas } : {}),
  };
}

// A company name ending in "S.A." followed by the sentence's own period would read "S.A..".
const tidy = (text: string) => text.trim().replace(/\.\./g, ".");

/** Generates `count` orders, deterministic for a seed; held-out orders use only held-out phrasings. */
export function generatePurchaseOrders(options: GenerateOptions): GeneratedOrder[] {
  const { count, seed } = options;
  if (!Number.isInteger(count) || count < 0)
    throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const heldout = options.phrasings === "heldout";
  const phrasings = heldout ? HELDOUT_PHRASINGS : TRAIN_PHRASINGS;
  const variety = options.variety ?? "templates";
  if (variety !== "templates" && variety !== "rich")
    throw new RangeError(`variety must be "templates" or "rich", got ${String(variety)}`);
  // Held-out orders are always the fixed held-out templates: the evaluation must not move with this option.
  const rich = variety === "rich" && !heldout;
  const rng = createRng(seed);
  const out: GeneratedOrder[] = [];
  let deck: Phrasing[] = [];
  for (let i = 0; i < count; i++) {
    const order = randomOrder(rng);
    if (rich && rng.next() >= RICH_TEMPLATE_SHARE) {
      const composed = composeOrder(rng, {
        order,
        currencyNames: CURRENCY_NAMES[order.moneda],
        urgency: rng.pick(URGENCY_PHRASES[order.urgencia]),
        amount: (v) => formatAmount(v, order.moneda),
      });
      out.push({
        natural_language: tidy(composed.text),
        json_data: order,
        phrasing: `composed-${composed.layout}`,
      });
      continue;
    }
    // Deal phrasings from a shuffled deck so every template is used before any repeats.
    if (deck.length === 0) deck = rng.shuffle(phrasings);
    const phrasing = deck.pop()!;
    const ctx: Ctx = {
      o: order,
      cur: rng.pick(CURRENCY_NAMES[order.moneda]),
      date: formatDate(order.fecha_entrega, phrasing.dateStyle),
      urgency: rng.pick(URGENCY_PHRASES[order.urgencia]),
    };
    out.push({ natural_language: tidy(phrasing.render(ctx)), json_data: order, phrasing: phrasing.id });
  }
  return out;
}

/** Writes orders as JSONL lines `{natural_language, json_data}` (the format the loaders read). */
export function writePurchaseOrdersJsonl(path: string, orders: readonly GeneratedOrder[]): void {
  writeFileAtomic(
    path,
    orders
      .map((o) => JSON.stringify({ natural_language: o.natural_language, json_data: o.json_data }))
      .join("\n") + "\n",
  );
}
