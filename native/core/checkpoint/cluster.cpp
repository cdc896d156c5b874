// A cluster's checkpoints (checkpoint.h): the shards' own checkpoints (their
// slices as tensors) merged into one file of whole tensors that a single
// process loads, and a shard's slices taken back out of such a file.
#include <algorithm>
#include <cstring>

#include "checkpoint.h"
#include "metadata.h"

namespace gv::ckpt {
namespace {

Status merge_error(const std::string& msg) { return Status::Error(Code::DataFormat, "merging shard checkpoints: " + escape_bytes(msg)); }

struct Part {
  st::Header h;
  const uint8_t* data = nullptr;  // the data section
  FileMetadata meta;
};

}  // namespace

Status merge(const std::string& file, const std::vector<std::vector<uint8_t>>& parts, const std::vector<MergeTensor>& tensors, SaveInfo* info) {
  if (parts.empty()) return merge_error("no parts");
  std::vector<Part> ps(parts.size());
  for (size_t p = 0; p < parts.size(); ++p) {
    uint64_t need = 0;
    if (Status s = st::parse(parts[p].data(), parts[p].size(), parts[p].size(), &ps[p].h, &need); !s.ok()) return s;
    if (need > parts[p].size()) return merge_error("part " + std::to_string(p) + " is truncated");
    ps[p].data = parts[p].data() + ps[p].h.dataStart;
    if (Status s = read_metadata("shard " + std::to_string(p), ps[p].h, &ps[p].meta); !s.ok()) return s;
    for (const char* key : {"mode", "optimizer", "options"}) {
      const std::string* a = ps[0].h.meta(key);
      const std::string* b = ps[p].h.meta(key);
      if ((a == nullptr) != (b == nullptr) || (a && *a != *b)) return merge_error(std::string("the shards disagree on their ") + key);
    }
  }
  // The roles a slice tensor has in its part: the parameter, each optimizer slot, the exact values.
  std::vector<std::string> prefixes = {""};
  for (const st::Tensor& t : ps[0].h.tensors)
    if (t.name.rfind("optimizer.", 0) == 0) {
      const std::string slot = t.name.substr(0, t.name.find('.', 10) + 1);
      bool have = false;
      for (const auto& x : prefixes) have = have || x == slot;
      if (!have) prefixes.push_back(slot);
    }
  if (ps[0].meta.mode == Mode::Deterministic) prefixes.push_back("fixed.");
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<st::OutTensor> out;
  buffers.reserve(tensors.size() * prefixes.size());
  for (const std::string& prefix : prefixes) {
    const bool fixed = prefix == "fixed.";
    const size_t width = fixed ? 8 : 4;
    for (const MergeTensor& t : tensors) {
      uint64_t size = 1;
      for (int64_t d : t.shape) size *= static_cast<uint64_t>(d);
      buffers.emplace_back(size * width);
      std::vector<uint8_t>& buf = buffers.back();
      uint64_t covered = 0;
      for (const MergeSlice& s : t.slices) {
        if (s.part >= ps.size() || s.start + s.size > size) return merge_error("slice '" + s.name + "' is outside tensor '" + t.name + "'");
        const st::Tensor* src = ps[s.part].h.find(prefix + s.name);
        if (!src || src->dtype != (fixed ? "I64" : "F32") || src->end - src->begin != s.size * width)
          return merge_error("shard " + std::to_string(s.part) + " has no " + (fixed ? "I64" : "F32") + " tensor '" + prefix + s.name + "' of " +
                             std::to_string(s.size) + " values");
        if (s.size) std::memcpy(buf.data() + s.start * width, ps[s.part].data + src->begin, s.size * width);
        covered += s.size;
      }
      if (covered != size) return merge_error("the slices of '" + t.name + "' cover " + std::to_string(covered) + " of its " + std::to_string(size) + " values");
      out.push_back({prefix + t.name, fixed ? "I64" : "F32", t.shape, buf.data(), buf.size()});
    }
  }
  // Metadata: the shards' common settings; the version summed (a push to k
  // shards counted k times, as the cluster's version counts it), the step
  // the largest (the optimizer steps a parameter has taken: what a single
  // store resuming it needs for adam's bias corrections), each shard's
  // version kept for a cluster that resumes with the same shards.
  // A shard's open averaging round (synchronous mode: pushes of the next
  // round that arrived before the cut) is left out: the parameters and
  // optimizer state are those of the round boundary, and its pushes are
  // not counted (its round.* sums are not copied).
  uint64_t version = 0, step = 0;
  std::string versions = "[";
  for (size_t p = 0; p < ps.size(); ++p) {
    const uint64_t v = ps[p].meta.version - std::min(ps[p].meta.version, ps[p].meta.pending);
    version += v;
    step = std::max(step, ps[p].meta.step);
    versions += (p ? "," : "") + std::to_string(v);
  }
  versions += "]";
  std::string names = "[";
  for (size_t t = 0; t < tensors.size(); ++t) names += std::string(t ? "," : "") + st::json_string(tensors[t].name);
  names += "]";
  Metadata m = {{"format", kFormat}, {"version", std::to_string(version)}, {"step", std::to_string(step)}, {"tensors", names}, {"shards", versions}};
  for (const char* key : {"mode", "optimizer", "options"})
    if (const std::string* v = ps[0].h.meta(key)) m.push_back({key, *v});
  if (Status s = st::write(file, out, m); !s.ok()) return s;
  info->bytes = 0;
  for (const auto& t : out) info->bytes += t.bytes;
  info->version = version;
  return Status::Ok();
}

Status load_slices(const std::string& file, const LoadOptions& options, const std::vector<SliceSpec>& slices, uint64_t shard,
                   std::shared_ptr<Store>* out) {
  st::Header h;
  std::vector<uint8_t> data;
  if (Status s = st::read(file, options.maxBytes, &h, &data); !s.ok()) return s;
  FileMetadata meta;
  if (Status s = read_metadata(file, h, &meta); !s.ok()) return s;
  std::shared_ptr<Store> full;
  if (Status s = open(file, h, data, options, &full); !s.ok()) return s;
  data = {};
  StateImage img;
  if (Status s = full->export_state(&img); !s.ok()) return s;
  if (img.pending > 0) return Status::Error(Code::DataFormat, file + ": an open averaging round cannot be split over shards");
  std::vector<TensorSpec> specs;
  struct Range {
    size_t from, size;
  };
  std::vector<Range> ranges;
  for (const SliceSpec& s : slices) {
    const int64_t t = full->find(s.tensor);
    if (t < 0) return Status::Error(Code::Config, file + " holds no tensor '" + s.tensor + "' (the cluster's spec names it)", "tensors");
    const TensorInfo& ti = full->tensor(static_cast<size_t>(t));
    if (s.start + s.size > ti.size)
      return Status::Error(Code::Config, file + ": tensor '" + s.tensor + "' has " + std::to_string(ti.size) + " values, the cluster's spec needs " +
                                             std::to_string(s.start + s.size), "tensors");
    TensorSpec sp(s.name, {static_cast<int64_t>(s.size)}, InitKind::Values);
    sp.values.assign(img.params.begin() + ti.offset + s.start, img.params.begin() + ti.offset + s.start + s.size);
    specs.push_back(std::move(sp));
    ranges.push_back({ti.offset + s.start, s.size});
  }
  std::shared_ptr<Store> store;
  if (Status s = Store::create(full->config(), specs, &store); !s.ok()) return s;
  // The shard's version: its own, where the file came from a cluster with
  // this shard; else the file's.
  RestoreInput in;
  in.version = img.version;
  in.step = img.step;
  if (shard < meta.shards.size()) in.version = in.step = meta.shards[shard];
  const std::vector<float>* state[2] = {&img.s1, &img.s2};
  for (size_t k = 0; k < 2; ++k) {
    if (state[k]->empty()) continue;
    for (size_t i = 0; i < slices.size(); ++i)
      in.state.push_back({static_cast<int>(k + 1), {slices[i].name, state[k]->data() + ranges[i].from, ranges[i].size}});
  }
  if (!img.fixed.empty())
    for (size_t i = 0; i < slices.size(); ++i) in.fixed.push_back({slices[i].name, img.fixed.data() + ranges[i].from, ranges[i].size});
  if (Status s = restore(*store, in); !s.ok()) return s;
  *out = std::move(store);
  return Status::Ok();
}

}  // namespace gv::ckpt
