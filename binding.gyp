{
  "variables": {
    "tuneforge_cuda%": "<!(node native/find-cuda.mjs enabled)"
  },
  "targets": [
    {
      "target_name": "tuneforge_native",
      "sources": [
        "native/addon.cc",
        "native/cpu/gemm.cc",
        "native/cpu/gemm_binding.cc",
        "native/cpu/backend.cc",
        "native/cpu/elementwise.cc",
        "native/cpu/embedding.cc",
        "native/cpu/rmsnorm.cc",
        "native/cpu/rope.cc",
        "native/cpu/attention.cc",
        "native/cpu/swiglu.cc",
        "native/cpu/cross_entropy.cc",
        "native/cpu/adamw.cc",
        "native/engine/tensor.cc",
        "native/engine/weights.cc",
        "native/engine/model.cc",
        "native/engine/optim.cc",
        "native/engine/profile.cc",
        "native/engine/generate.cc",
        "native/cuda/kernel_check.cc",
        "native/cuda/cuda_binding.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-ffp-contract=fast"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "ldflags": ["-fopenmp"],
      "conditions": [
        [
          "tuneforge_cuda==1",
          {
            "defines": ["TUNEFORGE_CUDA=1"],
            "sources": [
              "native/cuda/memory.cu",
              "native/cuda/backend.cu",
              "native/cuda/elementwise.cu",
              "native/cuda/reduce.cu",
              "native/cuda/embedding.cu",
              "native/cuda/rmsnorm.cu",
              "native/cuda/rope.cu",
              "native/cuda/attention.cu",
              "native/cuda/attention_gemm.cu",
              "native/cuda/attention_mma.cu",
              "native/cuda/attention_decode.cu",
              "native/cuda/swiglu.cu",
              "native/cuda/cross_entropy.cu",
              "native/cuda/adamw.cu",
              "native/cuda/lora.cu",
              "native/cuda/skinny_gemm.cu",
              "native/cuda/fill.cu",
              "native/cuda/bandwidth.cu"
            ],
            "rules": [
              {
                "rule_name": "nvcc",
                "extension": "cu",
                "inputs": [
                  "native/cuda/common.cuh",
                  "native/cuda/kernels.cuh",
                  "native/cuda/mma.cuh",
                  "native/cuda/attention_mask.cuh",
                  "native/cuda/memory.h",
                  "native/cuda/fill.h",
                  "native/cuda/bandwidth.h",
                  "native/engine/random_fill.h",
                  "native/engine/dropout_rng.h",
                  "native/engine/backend.h",
                  "native/engine/tensor.h"
                ],
                "outputs": ["<(INTERMEDIATE_DIR)/cuda_<(RULE_INPUT_ROOT).o"],
                "action": [
                  "<!(node native/find-cuda.mjs nvcc)",
                  "<!@(node native/find-cuda.mjs nvccflags)",
                  "-DTUNEFORGE_CUDA=1",
                  "-Inative",
                  "-c",
                  "<(RULE_INPUT_PATH)",
                  "-o",
                  "<(INTERMEDIATE_DIR)/cuda_<(RULE_INPUT_ROOT).o"
                ],
                "message": "nvcc <(RULE_INPUT_PATH)",
                "process_outputs_as_sources": 1
              }
            ],
            "libraries": ["<!@(node native/find-cuda.mjs libs)"]
          }
        ]
      ]
    }
  ]
}
