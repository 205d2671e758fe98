// The matrix products of one training step, as the engine issues them (native/engine/model.cc):
// weights are stored [out, in], so forward is x W^T (NT), input gradients dy W (NN), weight gradients
// dy^T x (TN), and LoRA adds its rank-r products around each projection.

export interface GemmShape {
  /** What the product is, e.g. `fixture/down fwd`. */
  name: string;
  transA: boolean;
  transB: boolean;
  M: number;
  N: number;
  K: number;
}

export interface ModelDims {
  label: string;
  tokens: number;
  hidden: number;
  intermediate: number;
  vocab: number;
  loraRank: number;
  /** Also measured by `bench:cpu --quick`. */
  quick?: boolean;
}

/** The tiny parity fixture (shared/fixtures base/, 2 rows of 24 tokens) and a Qwen-like model that fits
 * a small CPU machine (vocab 151,936, hidden 256, intermediate 768) at batch 1 and 4 of 256 tokens, and the demo. */
export const BENCH_MODELS: ModelDims[] = [
  { label: "fixture", tokens: 48, hidden: 64, intermediate: 176, vocab: 384, loraRank: 8 },
  { label: "qwen-t256", tokens: 256, hidden: 256, intermediate: 768, vocab: 151936, loraRank: 16 },
  { label: "qwen-t1024", tokens: 1024, hidden: 256, intermediate: 768, vocab: 151936, loraRank: 16 },
  // The demo's tiny model (full fine-tuning, 4 rows of ~224 tokens); its LoRA shapes are measured but unused.
  { label: "demo", tokens: 896, hidden: 128, intermediate: 256, vocab: 2051, loraRank: 16, quick: true },
];

export function trainingStepShapes(d: ModelDims): GemmShape[] {
  const { tokens: T, hidden: H, intermediate: I, vocab: V, loraRank: r } = d;
  const s = (name: string, transA: boolean, transB: boolean, M: number, N: number, K: number): GemmShape => ({
    name: `${d.label}/${name}`,
    transA,
    transB,
    M,
    N,
    K,
  });
  return [
    // Base projections (q/o: H->H, gate/up: H->I, down: I->H) and the LM head.
    s("attn proj fwd", false, true, T, H, H),
    s("gate/up fwd", false, true, T, I, H),
    s("down fwd", false, true, T, H, I),
    s("lm head fwd", false, true, T, V, H),
    s("attn proj dx", false, false, T, H, H),
    s("gate/up dx", false, false, T, H, I),
    s("down dx", false, false, T, I, H),
    s("lm head dx", false, false, T, H, V),
    // Weight gradients: only in full fine-tuning or with an untied, trained head.
    s("gate/up dW", true, false, I, H, T),
    s("lm head dW", true, false, V, H, T),
    // LoRA on gate/up (the widest adapted projection): forward, then gB, d(xA), gA, dx.
    s("lora xA fwd", false, true, T, r, H),
    s("lora (xA)B fwd", false, true, T, I, r),
    s("lora gB", true, false, I, r, T),
    s("lora d(xA)", false, false, T, r, I),
    s("lora gA", true, false, r, H, T),
    s("lora dx", false, false, T, H, r),
  ];
}
