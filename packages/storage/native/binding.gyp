{
  "targets": [
    {
      "target_name": "storage_native",
      "sources": ["storage-native.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "libraries": ["-lzstd"]
    }
  ]
}
