{
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
        "native/engine/generate.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-fopenmp", "-ffp-contract=fast"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "ldflags": ["-fopenmp"]
    }
  ]
}
