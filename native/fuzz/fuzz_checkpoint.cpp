// A whole checkpoint file, header and body, through ckpt::load (the one
// load path: the facade's ParameterStore.load and gv_bench_train --resume)
// with no options: it either refuses the file with a typed error naming it
// (DataFormat, Io; never a Config error, which would blame a caller who
// passed nothing) or opens it, and then every parameter holds the file's
// values (F64 rounded to float32), and a second load gives the same bits.
#include <cstring>

#include "core/checkpoint/checkpoint.h"
#include "core/checkpoint/safetensors.h"
#include "core/store.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gvfuzz::MemFile file("checkpoint");
  const std::string& path = file.write(data, size);
  gv::ckpt::LoadOptions options;
  options.maxBytes = 1u << 20;
  std::shared_ptr<gv::Store> store;
  gv::Status s = gv::ckpt::load(path, options, &store);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == gv::Code::DataFormat || s.code == gv::Code::Io, "%s: %s", gv::code_name(s.code), s.message.c_str());
    FUZZ_CHECK(s.message.find(path) != std::string::npos, "the message does not name the file: %s", s.message.c_str());
    return 0;
  }
  gv::st::Header h;
  std::vector<uint8_t> body;
  FUZZ_CHECK(gv::st::read(path, 1u << 20, &h, &body).ok(), "load accepted what read refuses");
  FUZZ_CHECK(h.dataStart + body.size() == size, "body of %zu bytes", body.size());
  std::vector<float> snap(store->padded_floats());
  store->snapshot(snap.data());
  for (size_t i = 0; i < store->tensor_count(); ++i) {
    const gv::TensorInfo& ti = store->tensor(i);
    const gv::st::Tensor* ft = h.find(ti.name);
    FUZZ_CHECK(ft && gv::ckpt::is_float(*ft) && gv::ckpt::elements(*ft) == ti.size, "'%s' is no float tensor of the file", ti.name.c_str());
    std::vector<float> want(ti.size);
    if (ti.size) gv::ckpt::read_floats(*ft, body.data(), want.data());
    if (store->mode() == gv::Mode::Deterministic) continue;  // Q32.32: the values round to 2^-32
    FUZZ_CHECK(ti.size == 0 || std::memcmp(snap.data() + ti.offset, want.data(), ti.size * 4) == 0, "'%s' differs", ti.name.c_str());
  }
  std::shared_ptr<gv::Store> again;
  FUZZ_CHECK(gv::ckpt::load(path, options, &again).ok(), "a second load failed");
  std::vector<float> snap2(again->padded_floats());
  again->snapshot(snap2.data());
  FUZZ_CHECK(snap2.size() == snap.size() && (snap.empty() || std::memcmp(snap.data(), snap2.data(), snap.size() * 4) == 0),
             "two loads of one file differ");
  return 0;
}
