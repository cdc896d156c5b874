// safetensors header parser on raw bytes, the way st::read drives it: first
// the 8-byte length alone, then the header bytes it asks for. An accepted
// header must describe spans that tile the data section exactly.
#include "core/checkpoint/safetensors.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  gv::st::Header h;
  uint64_t need = 0;
  gv::Status s = gv::st::parse(data, size >= 8 ? 8 : 0, size, &h, &need);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == gv::Code::DataFormat && s.offset >= 0, "%s", s.message.c_str());
    return 0;
  }
  FUZZ_CHECK(need >= 8 && need <= size, "asks for %llu of %zu bytes", (unsigned long long)need, size);
  s = gv::st::parse(data, need, size, &h, &need);
  if (!s.ok()) {
    FUZZ_CHECK(s.code == gv::Code::DataFormat && s.offset >= 0 && uint64_t(s.offset) <= size, "%s", s.message.c_str());
    return 0;
  }
  FUZZ_CHECK(h.dataStart == need && h.dataStart <= size, "dataStart %llu", (unsigned long long)h.dataStart);
  uint64_t at = 0;
  for (const gv::st::Tensor& t : h.tensors) {
    FUZZ_CHECK(t.begin == at && t.end >= t.begin, "'%s' spans [%llu, %llu) after %llu", t.name.c_str(),
               (unsigned long long)t.begin, (unsigned long long)t.end, (unsigned long long)at);
    uint64_t n = gv::st::dtype_size(t.dtype);
    FUZZ_CHECK(n > 0, "unknown dtype %s accepted", t.dtype.c_str());
    for (int64_t d : t.shape) {
      FUZZ_CHECK(d >= 0, "negative dimension accepted");
      n *= uint64_t(d);
    }
    FUZZ_CHECK(n == t.end - t.begin, "'%s': %llu bytes for its shape, span of %llu", t.name.c_str(), (unsigned long long)n,
               (unsigned long long)(t.end - t.begin));
    FUZZ_CHECK(h.find(t.name) == &t, "find('%s')", t.name.c_str());
    at = t.end;
  }
  FUZZ_CHECK(h.dataStart + at == size, "tensors cover %llu of %llu data bytes", (unsigned long long)at,
             (unsigned long long)(size - h.dataStart));
  return 0;
}
