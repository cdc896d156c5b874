// CSV loader: the first byte picks the label column (0..3 or the last), the
// header mode (auto, none, one) and the delimiter (',' ';' '\t' ' ').
#include "core/data/dataset.h"
#include "fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static gvfuzz::MemFile file("csv");
  if (size < 1) return 0;
  gv::data::CsvOptions o;
  o.labelIndex = (data[0] & 3);
  o.header = int((data[0] >> 2) % 3) - 1;
  static const char delims[] = {',', ';', '\t', ' '};
  o.delimiter = delims[(data[0] >> 4) & 3];
  if (data[0] & 0x40) {  // by name: the header row must hold it
    o.labelIndex = -1;
    o.labelName = "y";
  }
  const std::string& path = file.write(data + 1, size - 1);
  gv::data::Dataset d;
  gv::Status s = gv::data::load_csv(path, o, &d);
  if (!s.ok()) {
    if (s.code == gv::Code::Config || s.code == gv::Code::InvalidArgument) return 0;  // e.g. no column named y
    gvfuzz::check_refusal(s, path);
    return 0;
  }
  FUZZ_CHECK(d.kind == gv::data::Kind::Dense, "kind %s", gv::data::kind_name(d.kind));
  FUZZ_CHECK(d.X.size() == d.rows * d.features && d.labels.size() == d.rows, "X %zu, rows %llu x %llu", d.X.size(),
             (unsigned long long)d.rows, (unsigned long long)d.features);
  for (float x : d.X) FUZZ_CHECK(std::isfinite(x), "a non-finite cell");
  if (d.classes > 0)
    for (int32_t c : d.classIds) FUZZ_CHECK(c >= 0 && uint64_t(c) < d.classes, "class id %d of %llu", c, (unsigned long long)d.classes);
  return 0;
}
