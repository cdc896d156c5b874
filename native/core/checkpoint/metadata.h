// A checkpoint's metadata (checkpoint.h), both ways: written from a store's
// configuration and counters by save(), read back and checked by load().
// Keys: format ("gradvault/1"), mode, version, step, tensors (a JSON array
// of the parameters' names, in order), optimizer (a JSON object: kind and
// that kind's settings, floats as their shortest decimal), options (a JSON
// object: staleness { policy, bound|null }, nonFinite, syncEvery, verify) and,
// when averaging's round is open, pending; when the store knows its model
// (store.h ModelInfo), model (a JSON object: kind, that kind's options and
// the data shape: {"kind":"mlp","hidden":[128],"features":784,"classes":10},
// {"kind":"svm","features":10}, {"kind":"mf","rank":10,"biases":true,"l2":0,
// "users":943,"items":1682}; read from files of this format only); a cluster's file (merge) adds shards (a JSON
// array of each shard's version). Unknown keys are kept by readers
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
  std::optional<ModelInfo> model;  // absent: the file does not say (older files)
};

// Reads and checks the metadata: a value of the wrong form is a DataFormat
// Status naming the file, the key and (as the header's start) byte offset 8.
Status read_metadata(const std::string& file, const st::Header& h, FileMetadata* out);

// The metadata "model" alone (JSON text), checked as read_metadata checks
// it: a known kind, its options and data shape (positive integers), keys
// of other kinds refused, unknown keys ignored.
Status read_model(const std::string& file, const std::string& text, ModelInfo* out);
// The same written (metadata_of writes it when the store knows its model).
std::string model_json(const ModelInfo& m);

}  // namespace gv::ckpt
