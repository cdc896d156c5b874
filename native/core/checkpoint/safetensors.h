// safetensors files (README "Checkpoints"): an 8-byte little-endian header length,
// a JSON header { name: { dtype, shape, data_offsets: [begin, end] }, ...,
// "__metadata__": { string: string } }, then the raw little-endian tensors.
// Parsing checks everything before any tensor memory is touched: the header
// size limit, the JSON, known dtypes, shapes, sizes that match the offsets,
// offsets that tile the data exactly (no gap, no overlap), no duplicate
// names. Writing is crash-safe: a temporary file in the same folder, fsync,
// rename over the target, fsync of the folder.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../status.h"

namespace gv::st {

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // as the Python library

struct Tensor {
  std::string name;
  std::string dtype;  // "F32", "I64", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
};

struct Header {
  std::vector<Tensor> tensors;  // in file order of their offsets
  std::vector<std::pair<std::string, std::string>> metadata;
  uint64_t dataStart = 0;  // 8 + header length
  const Tensor* find(const std::string& name) const;
  const std::string* meta(const std::string& key) const;
};

// Bytes per element of a safetensors dtype, 0 if unknown.
size_t dtype_size(const std::string& dtype);

// Parses and validates the first bytes of a file of fileSize bytes (bytes
// holds at least min(fileSize, 8 + header length) bytes, or just 8 to learn
// the length: needHeaderBytes says how many are needed). DataFormat errors
// carry the byte offset.
Status parse(const uint8_t* bytes, size_t n, uint64_t fileSize, Header* out, uint64_t* needHeaderBytes);

// Reads and validates a whole file (at most maxBytes).
Status read(const std::string& file, uint64_t maxBytes, Header* header, std::vector<uint8_t>* data);

struct OutTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  const void* data;
  uint64_t bytes;
};

// Writes the file crash-safely; first sweeps temporary files that dead
// writers left beside it.
Status write(const std::string& file, const std::vector<OutTensor>& tensors,
             const std::vector<std::pair<std::string, std::string>>& metadata);

// Temporary files of `file` left by writers that are gone: removed; returns how many.
size_t sweep_temporaries(const std::string& file);

// JSON string escaping for the header.
std::string json_string(const std::string& s);

}  // namespace gv::st
