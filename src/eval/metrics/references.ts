// Reference input in sacreBLEU's layout: one or several reference *streams*, each holding one reference per
// hypothesis. A `null` inside a stream means "no reference of this stream for that segment" (variable number
// of references), which sacreBLEU reports as `nrefs:var`.
import { TuneforgeError } from "../../errors.js";

/** A single stream (`string[]`) or several streams (`string[][]`, `refs[stream][segment]`). */
export type References = ReadonlyArray<string> | ReadonlyArray<ReadonlyArray<string | null>>;

export interface SegmentReferences {
  /** The references of each segment, `null`s removed. */
  perSegment: string[][];
  /** For each reference in `perSegment`, the index of the stream it came from. */
  streamOf: number[][];
  /** References per segment, or "var" where it differs between segments. */
  nrefs: number | "var";
}

function isSingleStream(refs: References): refs is ReadonlyArray<string> {
  return refs.length > 0 && typeof refs[0] === "string";
}

/**
 * Regroup reference streams by segment, checking every stream has one entry per hypothesis: sacreBLEU's zip
 * would silently drop the tail of the longer side, we refuse instead.
 */
export function referencesBySegment(hypCount: number, refs: References, metric: string): SegmentReferences {
  if (hypCount === 0) {
    throw new TuneforgeError(`${metric}: there are no hypotheses to score`, {
      hint: "pass at least one hypothesis segment (one per line in a file)",
    });
  }
  const streams: ReadonlyArray<ReadonlyArray<string | null>> = isSingleStream(refs)
    ? [refs]
    : (refs as ReadonlyArray<ReadonlyArray<string | null>>);
  if (streams.length === 0) {
    throw new TuneforgeError(`${metric}: no reference stream was given`, {
      hint: "pass one reference per hypothesis, or several streams of them",
    });
  }
  streams.forEach((stream, k) => {
    if (stream.length !== hypCount) {
      throw new TuneforgeError(
        `${metric}: reference stream ${k + 1} has ${stream.length} segments but there are ${hypCount} hypotheses`,
        { hint: "every reference stream needs exactly one reference per hypothesis, in the same order" },
      );
    }
  });
  const perSegment: string[][] = [];
  const streamOf: number[][] = [];
  const counts = new Set<number>();
  for (let i = 0; i < hypCount; i++) {
    const segRefs: string[] = [];
    const segStreams: number[] = [];
    streams.forEach((stream, k) => {
      const r = stream[i];
      if (r !== null && r !== undefined) {
        segRefs.push(r);
        segStreams.push(k);
      }
    });
    if (segRefs.length === 0) {
      throw new TuneforgeError(`${metric}: segment ${i + 1} has no reference in any stream`, {
        hint: "give every segment at least one reference (null only marks a missing extra reference)",
      });
    }
    counts.add(segRefs.length);
    perSegment.push(segRefs);
    streamOf.push(segStreams);
  }
  return { perSegment, streamOf, nrefs: counts.size === 1 ? [...counts][0] : "var" };
}

/** A sentence-level reference argument: one string or several. */
export function sentenceReferences(refs: string | ReadonlyArray<string>): string[] {
  return typeof refs === "string" ? [refs] : [...refs];
}
