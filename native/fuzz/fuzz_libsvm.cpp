// LIBSVM loader: the first byte picks the index base (auto, 0, 1) and a fixed
// feature count (none or 1..63); the rest is the file.
#include "core/data/dataset.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gvfuzz::MemFile file("libsvm");
  if (size < 1) return 0;
  gv::data::LibsvmOptions o;
  o.indexBase = int(data[0] % 3) - 1;
  o.features = (data[0] >> 2) & 63;
  const std::string& path = file.write(data + 1, size - 1);
  gv::data::Dataset d;
  gv::Status s = gv::data::load_libsvm(path, o, &d);
  if (!s.ok()) {
    gvfuzz::check_refusal(s, path);
    return 0;
  }
  FUZZ_CHECK(d.kind == gv::data::Kind::Sparse, "kind %s", gv::data::kind_name(d.kind));
  FUZZ_CHECK(d.indptr.size() == d.rows + 1 && d.indptr[0] == 0 && d.indptr[d.rows] == d.indices.size(), "indptr");
  FUZZ_CHECK(d.values.size() == d.indices.size() && d.labels.size() == d.rows, "sizes");
  if (o.features) FUZZ_CHECK(d.features == o.features, "features %llu, fixed %llu", (unsigned long long)d.features, (unsigned long long)o.features);
  for (uint64_t r = 0; r < d.rows; ++r) {
    FUZZ_CHECK(d.indptr[r] <= d.indptr[r + 1], "indptr not ascending at row %llu", (unsigned long long)r);
    for (uint64_t k = d.indptr[r]; k < d.indptr[r + 1]; ++k) {
      FUZZ_CHECK(d.indices[k] < d.features, "index %u of %llu features", d.indices[k], (unsigned long long)d.features);
      FUZZ_CHECK(k == d.indptr[r] || d.indices[k - 1] < d.indices[k], "indices not ascending in row %llu", (unsigned long long)r);
      FUZZ_CHECK(std::isfinite(d.values[k]), "a non-finite value");
    }
  }
  for (float y : d.labels) FUZZ_CHECK(std::isfinite(y), "a non-finite label");
  if (d.classes > 0)
    for (int32_t c : d.classIds) FUZZ_CHECK(c >= 0 && uint64_t(c) < d.classes, "class id %d of %llu", c, (unsigned long long)d.classes);
  return 0;
}
