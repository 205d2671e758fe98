// Documents (txt, pdf, docx) become plain text, then overlapping chunks: each chunk one `{text}` example.
// A document is read whole: chunking needs its full text, and documents are small next to datasets.
import { readFileSync } from "node:fs";
import { TuneforgeError } from "../../errors.js";
import type { Example } from "../types.js";
import { chunkText } from "./chunk.js";
import type { FileContext } from "./context.js";
import { decodeUtf8 } from "./utf8.js";

export type DocumentFormat = "txt" | "pdf" | "docx";

/** The document's text: UTF-8 for txt, the text layer for pdf, the paragraphs for docx. */
export async function extractDocumentText(file: string, format: DocumentFormat): Promise<string> {
  const bytes = readFileSync(file);
  if (format === "txt") return decodeUtf8(bytes, file);
  if (format === "pdf") return pdfText(bytes, file);
  return docxText(bytes, file);
}

async function pdfText(bytes: Buffer, file: string): Promise<string> {
  let pages: string[];
  // Loaded on first use: pdf.js is large, and most runs read no PDF.
  const { extractText, getDocumentProxy } = await import("unpdf");
  let pdf: Awaited<ReturnType<typeof getDocumentProxy>> | undefined;
  try {
    // verbosity 0: pdf.js would otherwise print its repair warnings to stdout.
    pdf = await getDocumentProxy(new Uint8Array(bytes), { verbosity: 0 });
    ({ text: pages } = await extractText(pdf, { mergePages: false }));
  } catch (e) {
    throw new TuneforgeError(`cannot read the PDF: ${(e as Error).message}`, {
      file,
      hint: "check that the file is a complete, unencrypted PDF (open it in a viewer and save it again)",
      cause: e,
    });
  } finally {
    await pdf?.destroy();
  }
  const text = pages.join("\n\n");
  if (text.trim() === "") {
    throw new TuneforgeError(
      `the PDF has no text layer (${pages.length} page(s) without text); it is probably scanned`,
      {
        file,
        hint: "run OCR first (e.g. `ocrmypdf in.pdf out.pdf`) and load the OCR'd PDF, or provide the text as .txt",
      },
    );
  }
  return text;
}

async function docxText(bytes: Buffer, file: string): Promise<string> {
  const { default: mammoth } = await import("mammoth");
  try {
    return (await mammoth.extractRawText({ buffer: bytes })).value;
  } catch (e) {
    throw new TuneforgeError(`cannot read the DOCX: ${(e as Error).message}`, {
      file,
      hint: "check that the file is a Word .docx document (an old .doc must be saved as .docx first)",
      cause: e,
    });
  }
}

export async function* loadDocument(ctx: FileContext, format: DocumentFormat): AsyncGenerator<Example[]> {
  const text = await extractDocumentText(ctx.file, format);
  if (text.trim() === "") return; // reported as an empty file by the caller
  const chunks = await chunkText(text, ctx.chunking);
  yield chunks.map((chunk) => ({
    kind: "example",
    domain: ctx.domain,
    source: { file: ctx.file, line: chunk.line },
    messages: [],
    text: chunk.text,
  }));
}
