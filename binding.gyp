{
  "targets": [
    {
      "target_name": "gradvault",
      "sources": ["<!@(node native/sources.js)", "native/binding/addon.cpp", "native/binding/buffers.cpp", "native/binding/checkpoint.cpp",
                  "native/binding/convert.cpp", "native/binding/dataset.cpp", "native/binding/store.cpp", "native/binding/trainer.cpp"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: when a worker_thread is
      # terminated (or the process exits) during a call into the addon, Node
      # refuses the JS exception; node-addon-api would then throw a C++ one
      # out of a C callback, which aborts the whole process (test/97).
      # GRADVAULT_STRICT_ATOMICS=1 at node-gyp rebuild (or npm install
      # --build-from-source: a prebuild is always the default build): mode
      # 'atomic' with relaxed std::atomic_ref loads and stores per element,
      # no data race by the letter of C++ (slower; README.md, RELIABILITY.md).
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS",
                  "<!(node -p \"process.env.GRADVAULT_STRICT_ATOMICS === '1' ? 'GV_STRICT_ATOMICS=1' : 'GV_STRICT_ATOMICS=0'\")"],
      "libraries": ["-lz"],
      "cflags_cc!": ["-std=gnu++17", "-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++20", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++20",
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-O3", "-ffp-contract=off", "-fno-math-errno"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++20"], "ExceptionHandling": 1 } }
    }
  ]
}
