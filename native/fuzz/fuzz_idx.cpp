// IDX loader: the first byte chooses scaling and where the input splits into
// the labels file and the images file (raw or gzip: the loader sniffs).
#include <cstring>

#include "core/data/dataset.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gvfuzz::MemFile images("images"), labels("labels");
  if (size < 1) return 0;
  const bool scale = data[0] & 1;
  // labels take 8 + (data[0] >> 1) bytes: enough for a header and a few labels
  size_t nl = 8 + (data[0] >> 1);
  const uint8_t* rest = data + 1;
  size_t nrest = size - 1;
  if (nl > nrest) nl = nrest;
  labels.write(rest, nl);
  images.write(rest + nl, nrest - nl);
  gv::data::Dataset d;
  gv::Status s = gv::data::load_idx(images.path(), labels.path(), scale, &d);
  if (!s.ok()) {
    gvfuzz::check_refusal(s, s.file);
    return 0;
  }
  FUZZ_CHECK(d.labels.size() == d.rows && d.classIds.size() == d.rows, "labels %zu, rows %llu", d.labels.size(),
             (unsigned long long)d.rows);
  FUZZ_CHECK(d.X.size() == d.rows * d.features, "X %zu != %llu x %llu", d.X.size(), (unsigned long long)d.rows,
             (unsigned long long)d.features);
  for (int32_t c : d.classIds) FUZZ_CHECK(c >= 0 && uint64_t(c) < d.classes, "class id %d of %llu", c, (unsigned long long)d.classes);
  for (float x : d.X) FUZZ_CHECK(x >= 0.f && x <= (scale ? 1.f : 255.f), "pixel %g", double(x));
  return 0;
}
