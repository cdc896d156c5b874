// A checkpoint's metadata (checkpoint.h), both ways: written from a store's
// configuration and counters by save(), read back and checked by load().
// Keys: format ("gradvault/1"), mode, version, step, tensors (a JSON array
// of the parameters' names, in order), optimizer (a JSON object: kind and
// that kind's settings, floats as their shortest decimal), options (a JSON
// object: staleness { policy, bound|null }, nonFinite, syncEvery, verify) and,
// when averaging's round is open, pending; a cluster's file (merge) adds
// shards (a JSON array of each shard's version). Unknown keys are kept by readers
// and ignored.
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../store.h"
#include "checkpoint.h"
#include "safetensors.h"

namespace gv::ckpt {

using Metadata = std::vector<std::pair<std::string, std::string>>;

// The metadata of a store saved at img's point in time.
Metadata metadata_of(const Store& s, const StateImage& img);

// What a file's metadata says; every field absent where the file says
// nothing (a file of another writer says nothing at all).
struct FileMetadata {
  bool ours = false;                  // format is kFormat
  std::vector<std::string> tensors;   // ours: the parameters, in order
  std::optional<Mode> mode;
  std::optional<kernels::StepArgs> optimizer;  // settings it does not name at their defaults
  std::optional<Staleness> staleness;
  std::optional<NonFinitePolicy> nonFinite;
  std::optional<uint64_t> syncEvery;
  std::optional<bool> verify;
  uint64_t version = 0, step = 0, pending = 0;
  std::vector<uint64_t> shards;  // a cluster's file: each shard's version
};

// Reads and checks the metadata: a value of the wrong form is a DataFormat
// Status naming the file, the key and (as the header's start) byte offset 8.
Status read_metadata(const std::string& file, const st::Header& h, FileMetadata* out);

}  // namespace gv::ckpt
