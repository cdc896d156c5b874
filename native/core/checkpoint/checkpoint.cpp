#include "checkpoint.h"

#include "metadata.h"

#include <chrono>
#include <cstring>

namespace gv::ckpt {

std::vector<std::string> slot_names(const kernels::StepArgs& o) {
  switch (o.kind) {
    case kernels::OptKind::Sgd: return o.momentum != 0.f ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
    case kernels::OptKind::Adagrad: return {"sum"};
    case kernels::OptKind::Rmsprop: return {"square_avg"};
    case kernels::OptKind::Adam: return {"exp_avg", "exp_avg_sq"};
  }
  return {};
}

Status save(Store& s, const std::string& file, SaveInfo* info, const std::vector<std::pair<std::string, std::string>>& extra) {
  const auto t0 = std::chrono::steady_clock::now();
  StateImage img;
  Status st = s.export_state(&img);
  if (!st.ok()) return st;
  std::vector<st::OutTensor> out;
  for (size_t t = 0; t < s.tensor_count(); ++t) {
    const TensorInfo& ti = s.tensor(t);
    out.push_back({ti.name, "F32", ti.shape, img.params.data() + ti.offset, ti.size * sizeof(float)});
  }
  const std::vector<std::string> slots = slot_names(s.config().optimizer);
  const std::vector<float>* state[2] = {&img.s1, &img.s2};
  // Every slot of the optimizer is written, even for a store of empty
  // tensors (no state memory at all): the reader expects the whole set.
  for (size_t k = 0; k < slots.size() && k < 2; ++k) {
    if (state[k]->empty() && s.padded_floats() > 0) continue;
    for (size_t t = 0; t < s.tensor_count(); ++t) {
      const TensorInfo& ti = s.tensor(t);
      out.push_back({"optimizer." + slots[k] + "." + ti.name, "F32", ti.shape, state[k]->data() + ti.offset, ti.size * sizeof(float)});
    }
  }
  if (!img.fixed.empty())
    for (size_t t = 0; t < s.tensor_count(); ++t) {
      const TensorInfo& ti = s.tensor(t);
      out.push_back({"fixed." + ti.name, "I64", ti.shape, img.fixed.data() + ti.offset, ti.size * sizeof(int64_t)});
    }
  // averaging's open round: its sums for the tensors its pushes named
  if (img.pending > 0)
    for (size_t t = 0; t < s.tensor_count(); ++t) {
      if (!img.roundTensors[t]) continue;
      const TensorInfo& ti = s.tensor(t);
      out.push_back({"round." + ti.name, "I64", ti.shape, img.round.data() + ti.offset, ti.size * sizeof(int64_t)});
    }
  Metadata m = metadata_of(s, img);
  for (const auto& kv : extra) {
    bool ours = false;
    for (const auto& have : m) ours = ours || have.first == kv.first;
    if (ours) return Status::Error(Code::InvalidArgument, "metadata key '" + escape_bytes(kv.first) + "' is the format's own", "extra");
  }
  m.insert(m.end(), extra.begin(), extra.end());
  st = st::write(file, out, m);
  if (!st.ok()) return st;
  info->bytes = 0;
  for (const auto& t : out) info->bytes += t.bytes;
  info->version = img.version;
  info->pauseSeconds = img.pauseSeconds;
  info->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status::Ok();
}

Status restore(Store& s, const RestoreInput& in) {
  const size_t padded = s.padded_floats();
  StateImage img;
  img.params.resize(padded);
  s.snapshot(img.params.data());  // the parameters came with the store's creation
  img.version = in.version;
  img.step = in.step;
  // The tensor an array is for, checked against its size; what names the array in errors.
  // (Empty tensors copy nothing: a store of empty tensors has no memory,
  // and memcpy to null is undefined even for 0 bytes; found by fuzz_roundtrip.)
  auto place = [&](const auto& a, const char* what, const char* type, const TensorInfo** out) {
    const int64_t t = s.find(a.name);
    if (t < 0) return Status::Error(Code::InvalidArgument, "no tensor '" + a.name + "'");
    const TensorInfo& ti = s.tensor(static_cast<size_t>(t));
    if (a.size != ti.size || (!a.data && a.size != 0))
      return Status::Error(Code::Shape, std::string(what) + " for '" + ti.name + "' must be " + type + " of " + std::to_string(ti.size) + " values");
    *out = &ti;
    return Status::Ok();
  };
  const TensorInfo* t = nullptr;
  for (const auto& [slot, a] : in.state) {
    if (Status st = place(a, "optimizer state", "float32", &t); !st.ok()) return st;
    std::vector<float>& dst = slot == 2 ? img.s2 : img.s1;
    if (dst.empty()) dst.assign(padded, 0.f);
    if (t->size) std::memcpy(dst.data() + t->offset, a.data, t->size * sizeof(float));
  }
  if (!in.fixed.empty()) {
    img.fixed.assign(padded, 0);
    for (const auto& a : in.fixed) {
      if (Status st = place(a, "fixed-point values", "int64", &t); !st.ok()) return st;
      if (t->size) std::memcpy(img.fixed.data() + t->offset, a.data, t->size * sizeof(int64_t));
    }
    if (in.fixed.size() != s.tensor_count()) img.fixed.clear();  // partial: use the float values
  }
  img.pending = in.pending;
  if (img.pending > 0) {
    img.round.assign(padded, 0);
    img.roundTensors.assign(s.tensor_count(), 0);
    for (const auto& a : in.round) {
      if (Status st = place(a, "round sums", "int64", &t); !st.ok()) return st;
      if (t->size) std::memcpy(img.round.data() + t->offset, a.data, t->size * sizeof(int64_t));
      img.roundTensors[static_cast<size_t>(s.find(a.name))] = 1;
    }
  }
  return s.import_state(img);
}

uint64_t elements(const st::Tensor& t) {
  uint64_t n = 1;
  for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
  return n;
}

bool is_float(const st::Tensor& t) { return t.dtype == "F32" || t.dtype == "F64"; }

void read_floats(const st::Tensor& t, const uint8_t* data, float* out) {
  const uint8_t* src = data + t.begin;
  const uint64_t n = elements(t);
  if (t.dtype == "F32") {
    std::memcpy(out, src, n * sizeof(float));
    return;
  }
  for (uint64_t i = 0; i < n; ++i) {
    double v;
    std::memcpy(&v, src + 8 * i, 8);
    out[i] = static_cast<float>(v);
  }
}

}  // namespace gv::ckpt
