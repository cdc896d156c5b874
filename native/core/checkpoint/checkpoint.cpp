#include "checkpoint.h"

#include <chrono>

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

Status save(Store& s, const std::string& file, const std::vector<std::pair<std::string, std::string>>& meta, SaveInfo* info) {
  const auto t0 = std::chrono::steady_clock::now();
  StateImage img;
  Status st = s.export_state(&img);
  if (!st.ok()) return st;
  std::vector<st::OutTensor> out;
  std::string names = "[";
  for (size_t t = 0; t < s.tensor_count(); ++t) {
    const TensorInfo& ti = s.tensor(t);
    out.push_back({ti.name, "F32", ti.shape, img.params.data() + ti.offset, ti.size * sizeof(float)});
    names += std::string(t ? "," : "") + st::json_string(ti.name);
  }
  names += "]";
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
  std::vector<std::pair<std::string, std::string>> m = {
      {"format", kFormat},
      {"mode", mode_name(s.mode())},
      {"version", std::to_string(img.version)},
      {"step", std::to_string(img.step)},
      {"tensors", names},
  };
  if (img.pending > 0) m.push_back({"pending", std::to_string(img.pending)});
  for (const auto& kv : meta) m.push_back(kv);
  st = st::write(file, out, m);
  if (!st.ok()) return st;
  info->bytes = 0;
  for (const auto& t : out) info->bytes += t.bytes;
  info->version = img.version;
  info->pauseSeconds = img.pauseSeconds;
  info->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status::Ok();
}

}  // namespace gv::ckpt
