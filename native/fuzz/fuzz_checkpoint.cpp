// A whole checkpoint file, header and body, through st::read (the addon's
// readCheckpoint), then loaded into a store the way the facade does for a
// file from another writer: every F32 or F64 tensor becomes a parameter
// (F64 converted), and a snapshot must give back the file's values.
#include <cstring>

#include "core/checkpoint/safetensors.h"
#include "core/store.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gvfuzz::MemFile file("checkpoint");
  const std::string& path = file.write(data, size);
  gv::st::Header h;
  std::vector<uint8_t> body;
  gv::Status s = gv::st::read(path, 1u << 20, &h, &body);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == gv::Code::DataFormat || s.code == gv::Code::Io, "%s", s.message.c_str());
    FUZZ_CHECK(s.message.find(path) != std::string::npos, "the message does not name the file: %s", s.message.c_str());
    return 0;
  }
  FUZZ_CHECK(h.dataStart + body.size() == size, "body of %zu bytes", body.size());
  std::vector<gv::TensorSpec> specs;
  for (const gv::st::Tensor& t : h.tensors) {
    FUZZ_CHECK(t.end <= body.size(), "'%s' ends at %llu of %zu", t.name.c_str(), (unsigned long long)t.end, body.size());
    if (t.dtype != "F32" && t.dtype != "F64") continue;
    gv::TensorSpec sp(t.name, t.shape, gv::InitKind::Values);
    const size_t es = t.dtype == "F32" ? 4 : 8;
    for (uint64_t o = t.begin; o < t.end; o += es) {
      float f;
      if (es == 4) {
        std::memcpy(&f, &body[o], 4);
      } else {
        double d;
        std::memcpy(&d, &body[o], 8);
        f = static_cast<float>(d);
      }
      sp.values.push_back(f);
    }
    specs.push_back(std::move(sp));
  }
  if (specs.empty()) return 0;
  std::vector<gv::TensorSpec> copy = specs;
  std::shared_ptr<gv::Store> store;
  s = gv::Store::create(gv::StoreConfig{}, std::move(copy), &store);
  if (!s.ok()) {  // e.g. a zero-sized tensor or an empty name: refused with a field
    FUZZ_CHECK(s.code == gv::Code::Config || s.code == gv::Code::Shape || s.code == gv::Code::InvalidArgument, "%s",
               s.message.c_str());
    return 0;
  }
  std::vector<float> snap(store->padded_floats());
  store->snapshot(snap.data());
  for (size_t i = 0; i < specs.size(); ++i) {
    const gv::TensorInfo& ti = store->tensor(static_cast<size_t>(store->find(specs[i].name)));
    FUZZ_CHECK(ti.size == specs[i].values.size(), "'%s': %zu elements", ti.name.c_str(), ti.size);
    FUZZ_CHECK(ti.size == 0 || std::memcmp(snap.data() + ti.offset, specs[i].values.data(), ti.size * 4) == 0, "'%s' differs", ti.name.c_str());
  }
  return 0;
}
