// EngineModel: the typed API over the native engine (forward, loss + backward, AdamW, generation, merge).
import { TuneforgeError } from "../errors.js";
import { loadModelConfig, ropeInvFreq, type ModelConfig } from "../model/config.js";
import { expectedTensors } from "../model/layout.js";
import { Checkpoint } from "../model/safetensors.js";
import { runGenerate } from "./generate.js";
import { checkLoraPair, fromPairs, loraModules, toPairs } from "./lora.js";
import { initLoraWeights, loraScale } from "../model/peft.js";
import { loadNative } from "./native.js";
import { resolveDevice, type DeviceChoice, type EngineDevice } from "./device.js";
import { embeddingOnHost, embeddingTableBytes, weightBytes, type WeightsDtype } from "./precision.js";
import type {
  AdamWSettings,
  Batch,
  GenerateOutput,
  GenerateSettings,
  LoraPair,
  LoraSettings,
  LossOutput,
  MemoryStats,
  NativeModelHandle,
  OptimizerState,
  NativeRandomInit,
  NativeTensorRef,
} from "./types.js";

export interface LoadOptions {
  /** CPU threads (default: OpenMP's choice, all cores). */
  threads?: number;
  /**
   * Rows of logits materialised at once by the loss (default: max(256, 2^24 / vocab) rows, i.e. >= 64 MB worth:
   * each chunk streams the whole LM head through its GEMMs, so long chunks run them faster).
   */
  lossChunkTokens?: number;
  /**
   * Where the model lives (default "cpu"): "cuda" needs an addon built with the CUDA backend and a GPU (else a
   * TuneforgeError says which is missing); "auto" takes the GPU when there is one.
   */
  device?: DeviceChoice;
  /**
   * Activation checkpointing from the start: true (every layer), false, or how many (bottom) layers (see
   * EngineModel.setGradientCheckpointing).
   */
  gradientCheckpointing?: boolean | number;
  /**
   * The dtype the frozen base matrices (projections, embedding, LM head) are held in (default "f32"). "bf16"
   * rounds them to nearest-even bfloat16 (half the memory; products on tensor cores on the GPU, widened to fp32
   * on the CPU); "f16" to fp16, for GPUs without bf16 (a GPU only); norms, biases, LoRA weights, gradients and
   * optimizer state stay fp32. LoRA only: full fine-tuning needs "f32". See resolveWeightsDtype for `training.bf16`.
   */
  weights?: WeightsDtype;
}

/** EngineModel.random: a model of a config's shapes with random weights, made on its device (no files). */
export interface RandomModelOptions extends LoadOptions {
  /** Same seed, same weights, on any device and thread count (default 0). */
  seed?: number;
  /** Standard deviation of the projection and embedding weights (default 0.02, HF's initializer_range). */
  std?: number;
}

export class EngineModel {
  private lora: LoraSettings | null = null;

  private constructor(
    readonly config: ModelConfig,
    private handle: NativeModelHandle | null,
    /** The device every tensor of this model lives on. */
    readonly device: EngineDevice,
    /** The dtype of the frozen base matrices. */
    readonly weights: WeightsDtype,
  ) {}

  /** Loads an HF model folder; the engine reads the weights from the safetensors files itself. */
  static load(dir: string, options: LoadOptions = {}): EngineModel {
    const device = resolveDevice(options.device ?? "cpu");
    const weights = checkWeightsDtype(options.weights, device);
    const config = loadModelConfig(dir);
    const ck = Checkpoint.open(dir);
    let tensors: NativeTensorRef[];
    try {
      tensors = expectedTensors(config).map((spec) => {
        if (!ck.has(spec.name)) {
          throw new TuneforgeError(`checkpoint has no tensor "${spec.name}"`, {
            file: dir,
            hint: "the weights do not match config.json; re-download or re-export the model",
          });
        }
        const info = ck.info(spec.name);
        if (info.shape.join(",") !== spec.shape.join(",")) {
          throw new TuneforgeError(
            `tensor "${spec.name}" has shape [${info.shape}], config.json implies [${spec.shape}]`,
            { file: info.file, hint: "the weights do not match config.json" },
          );
        }
        return {
          name: spec.name,
          file: info.file,
          offset: info.offset,
          dtype: info.dtype,
          shape: info.shape,
        };
      });
    } finally {
      ck.close();
    }
    return EngineModel.build(config, tensors, options, device, weights);
  }

  /**
   * A model of `config`'s shapes with random weights generated on its device: projections and embeddings
   * N(0, std^2) (rounded to bf16 with `weights: "bf16"`), RMSNorm scales 1, biases 0. For benchmarks at HF
   * sizes, which would cost more to write as safetensors than to run.
   */
  static random(config: ModelConfig, options: RandomModelOptions = {}): EngineModel {
    const seed = options.seed ?? 0;
    const std = options.std ?? 0.02;
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new TuneforgeError(`random weights: seed ${seed} must be a whole number >= 0`, {
        hint: "pass an integer seed, e.g. { seed: 0 }",
      });
    }
    if (!Number.isFinite(std) || std < 0) {
      throw new TuneforgeError(`random weights: std ${std} must be a finite number >= 0`, {
        hint: "HF models initialise with std 0.02",
      });
    }
    const device = resolveDevice(options.device ?? "cpu");
    return EngineModel.build(
      config,
      { seed, std },
      options,
      device,
      checkWeightsDtype(options.weights, device),
    );
  }

  private static build(
    config: ModelConfig,
    init: NativeTensorRef[] | NativeRandomInit,
    options: LoadOptions,
    device: EngineDevice,
    weights: WeightsDtype,
  ): EngineModel {
    const native = loadNative();
    const handle = newNativeModel(
      config,
      weights,
      () =>
        new native.NativeModel(
          {
            vocab: config.vocabSize,
            hidden: config.hiddenSize,
            intermediate: config.intermediateSize,
            layers: config.numLayers,
            heads: config.numHeads,
            kvHeads: config.numKvHeads,
            headDim: config.headDim,
            eps: config.rmsNormEps,
            tied: config.tieWordEmbeddings,
            qkvBias: config.qkvBias,
            oBias: config.oBias,
            mlpBias: config.mlpBias,
            qkNorm: config.qkNorm,
            invFreq: ropeInvFreq(config),
          },
          init,
          options.threads ?? 0,
          device,
          weights,
        ),
    );
    if (options.lossChunkTokens) handle.setLossChunk(options.lossChunkTokens);
    const model = new EngineModel(config, handle, device, weights);
    if (options.gradientCheckpointing) model.setGradientCheckpointing(options.gradientCheckpointing);
    return model;
  }

  private get native(): NativeModelHandle {
    if (!this.handle) throw new TuneforgeError("this EngineModel was disposed");
    return this.handle;
  }

  /** Attaches fresh LoRA adapters (replacing any), with given or PEFT-initialised weights. */
  setLora(s: LoraSettings): void {
    if (!Number.isInteger(s.r) || s.r <= 0) {
      throw new TuneforgeError(`LoRA rank ${s.r} must be a positive integer`, { key: "lora.r" });
    }
    const dropout = s.dropout ?? 0;
    if (dropout < 0 || dropout >= 1) {
      throw new TuneforgeError(`LoRA dropout ${dropout} must be in [0, 1)`, { key: "lora.dropout" });
    }
    const seed = s.seed ?? 0;
    this.native.setLora(s.r, loraScale(s.r, s.alpha, s.useRslora ?? false), dropout, seed, [...s.targets]);
    // Without given weights: PEFT's init (A kaiming-uniform, B = 0), seeded.
    const fresh = s.weights
      ? null
      : initLoraWeights(this.config, { r: s.r, targets: s.targets, seed }).weights;
    const pairs = new Map<string, LoraPair>();
    for (const m of loraModules(this.config, s.targets)) {
      const pair = s.weights?.get(m.module) ?? fresh?.get(m.module);
      if (!pair) {
        throw new TuneforgeError(`LoRA weights for ${m.module} are missing`, {
          hint: "give weights for every targeted module (or none, for a fresh adapter)",
        });
      }
      checkLoraPair(m, s.r, pair);
      pairs.set(m.module, { A: pair.A, B: pair.B });
    }
    this.native.setTrainable("weights", fromPairs(pairs));
    this.lora = s;
  }

  /** Full fine-tuning: every base weight gets a gradient and is updated by adamwStep. */
  setFullFinetune(on: boolean): void {
    if (on && this.weights !== "f32") {
      throw new TuneforgeError(
        "full fine-tuning needs f32 base weights, but this model was loaded with bf16 ones",
        {
          key: "training.bf16",
          hint: 'load the model with weights "f32" (training.bf16: false or "auto"), or train LoRA adapters',
        },
      );
    }
    this.native.setFullFinetune(on);
  }

  /**
   * Activation checkpointing: forwardBackward keeps only each layer's input (the residual stream entering it)
   * and recomputes the layer's forward right before its backward. Gradients are bitwise the same (same kernels,
   * same dropout masks). `true` checkpoints every layer (saves about (layers - 1) layers' activations for about
   * one more forward pass of compute), `false` none; a number k checkpoints the bottom k layers only (selective
   * recomputation: k - 1 layers' activations saved for k - 1 layers' forward; the top checkpointed layer is still
   * in memory when backward reaches it). k above the model's layers means all of them. A change frees the
   * activations at once; the next step allocates the new layout.
   */
  setGradientCheckpointing(on: boolean | number): void {
    const layers = this.config.numLayers;
    if (typeof on === "number" && (!Number.isInteger(on) || on < 0)) {
      throw new TuneforgeError(
        `gradient checkpointing of ${on} layers: a layer count is a whole number from 0`,
        {
          key: "training.gradient_checkpointing",
          hint: `give true (all ${layers} layers), false, "auto", or a layer count from 0 to ${layers}`,
        },
      );
    }
    const k = on === true ? layers : on === false ? 0 : Math.min(on, layers);
    this.native.setCheckpointedLayers(k);
  }

  /** True when any layer is checkpointed. */
  get gradientCheckpointing(): boolean {
    return this.checkpointedLayers > 0;
  }

  /** How many (bottom) layers are checkpointed: 0 (none) to config.numLayers (all). */
  get checkpointedLayers(): number {
    return this.native.checkpointedLayers();
  }

  /** Logits [rows, T, vocab] for every position. */
  forward(batch: Batch): Float32Array {
    const b = this.checkBatch(batch, false);
    return this.native.forward(b.inputIds, b.mask, b.seg, b.pos, batch.rows, b.T);
  }

  /**
   * Loss over the batch's shifted labels and gradients ADDED to the trainable grads (call zeroGrads()
   * between optimizer steps). Gradients are of the mean loss unless `gradScale` is given (e.g.
   * 1 / tokens of the whole accumulated batch, as HF Trainer's num_items_in_batch does).
   */
  forwardBackward(batch: Batch, options: { gradScale?: number } = {}): LossOutput {
    const b = this.checkBatch(batch, true);
    const r = this.native.forwardBackward(
      b.inputIds,
      b.mask,
      b.labels!,
      b.seg,
      b.pos,
      batch.rows,
      b.T,
      options.gradScale ?? 0,
    );
    return { loss: r.tokens > 0 ? r.lossSum / r.tokens : 0, lossSum: r.lossSum, tokens: r.tokens };
  }

  /**
   * The same loss as forwardBackward without the backward pass: no activations are kept for it, gradients are
   * left alone and dropout is off (validation).
   */
  evalLoss(batch: Batch): LossOutput {
    const b = this.checkBatch(batch, true);
    const r = this.native.evalLoss(b.inputIds, b.mask, b.labels!, b.seg, b.pos, batch.rows, b.T);
    return { loss: r.tokens > 0 ? r.lossSum / r.tokens : 0, lossSum: r.lossSum, tokens: r.tokens };
  }

  loraWeights(): Map<string, LoraPair> {
    return toPairs(this.native.getTrainable("weights"));
  }

  loraGrads(): Map<string, LoraPair> {
    return toPairs(this.native.getTrainable("grads"));
  }

  /** Replaces LoRA weights (same modules and rank as setLora). */
  setLoraWeights(weights: Map<string, LoraPair>): void {
    this.native.setTrainable("weights", fromPairs(weights));
  }

  /** Replaces gradients (e.g. after an all-reduce, or to replay known gradients). */
  setLoraGrads(grads: Map<string, LoraPair>): void {
    this.native.setTrainable("grads", fromPairs(grads));
  }

  /** Every trainable tensor by name (LoRA, plus base weights in full fine-tuning). */
  trainable(kind: "weights" | "grads" = "weights"): Map<string, Float32Array> {
    return new Map(Object.entries(this.native.getTrainable(kind)));
  }

  /** Replaces trainable tensors by name (as listed by trainable()). */
  setTrainable(kind: "weights" | "grads", values: Map<string, Float32Array>): void {
    this.native.setTrainable(kind, Object.fromEntries(values));
  }

  zeroGrads(): void {
    this.native.zeroGrads();
  }

  /** One AdamW update (PyTorch semantics) of every trainable tensor. */
  adamwStep(s: AdamWSettings): { gradNorm: number } {
    const gradNorm = this.native.adamwStep(
      s.lr,
      s.beta1 ?? 0.9,
      s.beta2 ?? 0.999,
      s.eps ?? 1e-8,
      s.weightDecay ?? 0,
      s.maxGradNorm ?? 0,
    );
    return { gradNorm };
  }

  resetOptimizer(): void {
    this.native.resetOptimizer();
  }

  /** AdamW's step count and moments by trainable tensor name (copies), for checkpoints. */
  optimizerState(): OptimizerState {
    const s = this.native.getOptimizerState();
    return { step: s.step, m: new Map(Object.entries(s.m)), v: new Map(Object.entries(s.v)) };
  }

  /** Restores optimizerState() output; the trainable tensors must be the same (names and sizes). */
  setOptimizerState(state: OptimizerState): void {
    this.native.setOptimizerState(state.step, Object.fromEntries(state.m), Object.fromEntries(state.v));
  }

  /**
   * LoRA dropout draws its masks from (seed, this counter), which advances once per adapted projection per
   * training forward. Setting it (e.g. from a global micro-step) makes the masks independent of history.
   */
  get dropoutCounter(): number {
    return this.native.getDropoutCounter();
  }

  set dropoutCounter(n: number) {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new TuneforgeError(`dropout counter ${n} must be a whole number >= 0`);
    this.native.setDropoutCounter(n);
  }

  /** New tokens for each prompt (batched; prompts may differ in length). */
  generate(prompts: number[][], settings: GenerateSettings): number[][] {
    return this.generateWithLogits(prompts, settings, false).tokens;
  }

  generateWithLogits(prompts: number[][], settings: GenerateSettings, withLogits = true): GenerateOutput {
    return runGenerate(this.native, this.config, prompts, settings, withLogits);
  }

  /** W + scale * B @ A for every LoRA module (module name -> [out, in]). */
  merge(): Map<string, Float32Array> {
    if (!this.lora) throw new TuneforgeError("merge() needs LoRA adapters; call setLora first");
    const out = new Map<string, Float32Array>();
    for (const m of loraModules(this.config, this.lora.targets))
      out.set(m.module, this.native.mergedWeight(m.module));
    return out;
  }

  /** Bytes the engine's allocator on this model's device holds now and at most so far (the GPU's for cuda). */
  memory(): MemoryStats {
    return this.native.memory();
  }

  dispose(): void {
    this.handle?.dispose();
    this.handle = null;
  }

  private checkBatch(batch: Batch, needLabels: boolean) {
    const n = batch.inputIds.length;
    if (!Number.isInteger(batch.rows) || batch.rows <= 0 || n % batch.rows !== 0) {
      throw new TuneforgeError(`batch of ${n} tokens cannot be split into ${batch.rows} rows`, {
        hint: "inputIds must hold rows * seqLen tokens",
      });
    }
    const same = (name: string, a?: Int32Array) => {
      if (a && a.length !== n) {
        throw new TuneforgeError(`batch ${name} has ${a.length} values, inputIds has ${n}`, {
          hint: "every batch array is [rows, seqLen]",
        });
      }
      return a ?? null;
    };
    const V = this.config.vocabSize;
    for (let i = 0; i < n; i++) {
      const id = batch.inputIds[i];
      if (id < 0 || id >= V) {
        throw new TuneforgeError(`token id ${id} at position ${i} is outside the vocabulary (size ${V})`, {
          hint: "the data was tokenized with a different tokenizer than this model's",
        });
      }
    }
    if (needLabels && !batch.labels) throw new TuneforgeError("forwardBackward needs batch.labels");
    if (batch.labels) {
      for (let i = 0; i < n; i++) {
        const y = batch.labels[i];
        if (y !== -100 && (y < 0 || y >= V)) {
          throw new TuneforgeError(`label ${y} at position ${i} is outside the vocabulary (size ${V})`, {
            hint: "labels are token ids or -100 (ignored)",
          });
        }
      }
    }
    return {
      T: n / batch.rows,
      inputIds: batch.inputIds,
      mask: same("attentionMask", batch.attentionMask),
      labels: same("labels", batch.labels),
      seg: same("segmentIds", batch.segmentIds),
      pos: same("positionIds", batch.positionIds),
    };
  }
}

function checkWeightsDtype(weights: WeightsDtype | undefined, device: EngineDevice): WeightsDtype {
  const w = weights ?? "f32";
  if (w !== "f32" && w !== "bf16" && w !== "f16") {
    throw new TuneforgeError(`unknown weights dtype "${String(w)}"`, { hint: 'use "f32", "bf16" or "f16"' });
  }
  if (w === "f16" && device === "cpu") {
    throw new TuneforgeError("fp16 base weights are for GPUs without bf16, not the CPU", {
      hint: 'load the model with weights "bf16" (half the memory) or "f32" on the CPU',
    });
  }
  return w;
}

/**
 * Builds the native model; running out of GPU memory there means the weights themselves do not fit, so the
 * allocator's generic advice (micro-batch, checkpointing) is replaced by what helps at load time.
 */
function newNativeModel(
  config: ModelConfig,
  weights: WeightsDtype,
  build: () => NativeModelHandle,
): NativeModelHandle {
  try {
    return build();
  } catch (e) {
    const message = (e as Error)?.message ?? String(e);
    if (!message.startsWith("out of GPU memory")) throw e;
    // what the device was to hold: an untied table stays in host memory (embeddingOnHost)
    const hostTable = embeddingOnHost(config, "cuda", "none") ? embeddingTableBytes(config, weights) : 0;
    const gib = ((weightBytes(config, weights) - hostTable) / 2 ** 30).toFixed(2);
    const numbers = message.split(". Lower")[0];
    throw new TuneforgeError(
      `the model's weights (${gib} GiB in ${weights}) do not fit on the GPU: ${numbers}`,
      {
        hint:
          weights === "f32"
            ? 'hold the frozen base in bf16 (training.bf16: true, or { weights: "bf16" }): half the bytes; ' +
              "or use a smaller model or a GPU with more memory"
            : "use a smaller base model or a GPU with more memory (device: cpu trains from RAM, slowly)",
        cause: e,
      },
    );
  }
}
