// The tensor names and shapes an HF checkpoint of a supported architecture holds. One list, used to
// validate checkpoints, to build random models and to load weights into the engine.
import type { ModelConfig } from "./config.js";

export interface TensorSpec {
  name: string;
  shape: number[];
}

/** The 7 projections LoRA can target, with the module path inside a decoder layer. */
export const PROJECTIONS = {
  q_proj: "self_attn.q_proj",
  k_proj: "self_attn.k_proj",
  v_proj: "self_attn.v_proj",
  o_proj: "self_attn.o_proj",
  gate_proj: "mlp.gate_proj",
  up_proj: "mlp.up_proj",
  down_proj: "mlp.down_proj",
} as const;
export type Projection = keyof typeof PROJECTIONS;
export const ALL_PROJECTIONS = Object.keys(PROJECTIONS) as Projection[];

/** [out, in] of a projection's weight (HF nn.Linear layout). */
export function projectionShape(config: ModelConfig, proj: Projection): [number, number] {
  const { hiddenSize: h, intermediateSize: f, numHeads, numKvHeads, headDim } = config;
  switch (proj) {
    case "q_proj":
      return [numHeads * headDim, h];
    case "k_proj":
    case "v_proj":
      return [numKvHeads * headDim, h];
    case "o_proj":
      return [h, numHeads * headDim];
    case "gate_proj":
    case "up_proj":
      return [f, h];
    case "down_proj":
      return [h, f];
  }
}

/** The full module name of a projection in layer `layer`, e.g. `model.layers.3.self_attn.q_proj`. */
export function projectionModule(layer: number, proj: Projection): string {
  return `model.layers.${layer}.${PROJECTIONS[proj]}`;
}

export function hasBias(config: ModelConfig, proj: Projection): boolean {
  if (proj === "q_proj" || proj === "k_proj" || proj === "v_proj") return config.qkvBias;
  if (proj === "o_proj") return config.oBias;
  return config.mlpBias;
}

/** Every tensor the checkpoint must hold, in a stable order. */
export function expectedTensors(config: ModelConfig): TensorSpec[] {
  const specs: TensorSpec[] = [
    { name: "model.embed_tokens.weight", shape: [config.vocabSize, config.hiddenSize] },
  ];
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    specs.push({ name: `${p}.input_layernorm.weight`, shape: [config.hiddenSize] });
    for (const proj of ALL_PROJECTIONS) {
      const shape = projectionShape(config, proj);
      specs.push({ name: `${projectionModule(l, proj)}.weight`, shape });
      if (hasBias(config, proj)) specs.push({ name: `${projectionModule(l, proj)}.bias`, shape: [shape[0]] });
    }
    if (config.qkNorm) {
      specs.push({ name: `${p}.self_attn.q_norm.weight`, shape: [config.headDim] });
      specs.push({ name: `${p}.self_attn.k_norm.weight`, shape: [config.headDim] });
    }
    specs.push({ name: `${p}.post_attention_layernorm.weight`, shape: [config.hiddenSize] });
  }
  specs.push({ name: "model.norm.weight", shape: [config.hiddenSize] });
  if (!config.tieWordEmbeddings)
    specs.push({ name: "lm_head.weight", shape: [config.vocabSize, config.hiddenSize] });
  return specs;
}
