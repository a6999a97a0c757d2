{
  "targets": [
    {
      "target_name": "xopd",
      "sources": ["<!@(node scripts/list-sources.cjs)"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")", "native"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wno-unused-function"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++1y", "-std=gnu++17"],
      "cflags": ["-fvisibility=hidden"],
      "ldflags": ["-pthread"]
    }
  ]
}
