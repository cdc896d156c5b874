// Data loaders (README "Data"; docs/ARCHITECTURE.md, invariants): good IDX (raw and gzip), LIBSVM
// and CSV files load to the expected arrays; every malformed file gives a
// DataFormat status with its file and line/column or byte offset; a missing
// file is NotFound; synthetic data is deterministic from its seed.
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "check.h"
#include "core/data/dataset.h"

using namespace gv;
using namespace gv::data;

namespace {

std::string g_dir;

std::string path(const std::string& name) { return g_dir + "/" + name; }

std::string write(const std::string& name, const std::string& bytes) {
  std::string p = path(name);
  FILE* f = std::fopen(p.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
  return p;
}

std::string gzip_bytes(const std::string& bytes) {
  std::string tmp = path("tmp.gz");
  gzFile g = gzopen(tmp.c_str(), "wb");
  gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(g);
  FILE* f = std::fopen(tmp.c_str(), "rb");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

std::string be32(uint32_t v) {
  std::string s(4, '\0');
  s[0] = char(v >> 24), s[1] = char(v >> 16), s[2] = char(v >> 8), s[3] = char(v);
  return s;
}

std::string idx_images(uint32_t n, uint32_t r, uint32_t c, uint8_t seed = 0) {
  std::string s = be32(0x803) + be32(n) + be32(r) + be32(c);
  for (uint32_t i = 0; i < n * r * c; ++i) s.push_back(char((i * 37 + seed) & 0xff));
  return s;
}

std::string idx_labels(uint32_t n) {
  std::string s = be32(0x801) + be32(n);
  for (uint32_t i = 0; i < n; ++i) s.push_back(char(i % 10));
  return s;
}

void check_error(const Status& s, Code code, int64_t line, int64_t column, int64_t offset, const std::string& what) {
  CHECK_MSG(s.code == code, what << ": code " << code_name(s.code) << " (" << s.message << "), expected " << code_name(code));
  CHECK_MSG(s.line == line, what << ": line " << s.line << ", expected " << line << " (" << s.message << ")");
  CHECK_MSG(s.column == column, what << ": column " << s.column << ", expected " << column << " (" << s.message << ")");
  CHECK_MSG(s.offset == offset, what << ": offset " << s.offset << ", expected " << offset << " (" << s.message << ")");
  if (code == Code::DataFormat || code == Code::NotFound || code == Code::Io) CHECK_MSG(!s.file.empty(), what << ": no file in " << s.message);
}

// ------------------------------------------------------------------- IDX

void idx_good() {
  for (bool gz : {false, true}) {
    std::string im = idx_images(12, 3, 2), lb = idx_labels(12);
    std::string ip = write(gz ? "im.gz" : "im", gz ? gzip_bytes(im) : im);
    std::string lp = write(gz ? "lb.gz" : "lb", gz ? gzip_bytes(lb) : lb);
    Dataset d;
    CHECK_OK(load_idx(ip, lp, true, &d));
    CHECK_EQ(d.rows, uint64_t(12));
    CHECK_EQ(d.features, uint64_t(6));
    CHECK_EQ(d.classes, uint64_t(10));
    CHECK(d.kind == Kind::Dense);
    CHECK_EQ(d.X.size(), size_t(72));
    bool ok = true;
    for (size_t i = 0; i < 72; ++i) ok = ok && d.X[i] == float((i * 37) & 0xff) / 255.0f;
    CHECK(ok);
    CHECK_EQ(d.classIds[11], 1);
    CHECK_EQ(d.labels[3], 3.0f);
    Dataset raw;
    CHECK_OK(load_idx(ip, lp, false, &raw));
    CHECK_EQ(raw.X[1], 37.0f);
  }
}

void idx_bad() {
  std::string lp = write("lb12", idx_labels(12));
  std::string im = idx_images(12, 3, 2);
  Dataset d;
  auto img = [&](const std::string& name, const std::string& bytes) { return load_idx(write(name, bytes), lp, true, &d); };
  check_error(load_idx(path("nope"), lp, true, &d), Code::NotFound, -1, -1, -1, "missing images");
  check_error(load_idx(path("im12"), path("nope"), true, &d), Code::NotFound, -1, -1, -1, "missing labels");
  check_error(img("empty", ""), Code::DataFormat, -1, -1, 0, "empty images");
  check_error(img("short", std::string("\0\0", 2)), Code::DataFormat, -1, -1, 2, "2-byte images");
  check_error(img("magic", "PK\3\4" + im.substr(4)), Code::DataFormat, -1, -1, 0, "zip magic");
  check_error(img("type", be32(0x0d03) + im.substr(4)), Code::DataFormat, -1, -1, 2, "float element type");
  check_error(img("labels-as-images", idx_labels(12)), Code::DataFormat, -1, -1, 3, "a labels file as images");
  check_error(img("trunc-header", im.substr(0, 10)), Code::DataFormat, -1, -1, 10, "truncated header");
  check_error(img("trunc", im.substr(0, im.size() - 5)), Code::DataFormat, -1, -1, int64_t(im.size() - 5), "truncated pixels");
  check_error(img("trailing", im + "xyz"), Code::DataFormat, -1, -1, int64_t(im.size()), "trailing bytes");
  check_error(img("zero-dim", be32(0x803) + be32(12) + be32(0) + be32(2)), Code::DataFormat, -1, -1, 8, "zero rows dimension");
  check_error(img("huge", be32(0x803) + be32(0xffffffff) + be32(0xffff) + be32(0xffff)), Code::DataFormat, -1, -1, 4, "huge dims");
  check_error(load_idx(write("im11", idx_images(11, 3, 2)), lp, true, &d), Code::DataFormat, -1, -1, 4, "count mismatch");
  {
    Status s = load_idx(path("im11"), lp, true, &d);
    CHECK_EQ(s.file, lp);
    CHECK_MSG(s.message.find("does not match the image count 11") != std::string::npos, s.message);
  }
  std::string lbad = idx_labels(12);
  check_error(load_idx(write("im12", im), write("lb-trunc", lbad.substr(0, 15)), true, &d), Code::DataFormat, -1, -1, 15,
              "truncated labels");
  check_error(load_idx(path("im12"), write("lb-magic", be32(0x803) + lbad.substr(4)), true, &d), Code::DataFormat, -1, -1, 3,
              "labels with 3 dims magic");
  // gzip: truncation and corruption are found while inflating; offsets
  // count uncompressed bytes.
  std::string gz = gzip_bytes(im);
  {
    Status s = img("gz-trunc", gz.substr(0, gz.size() - 12));
    CHECK_MSG(s.code == Code::DataFormat && s.offset >= 0 && s.offset <= int64_t(im.size()), s.message);
    std::string corrupt = gz;
    for (size_t i = 12; i < corrupt.size() - 8; ++i) corrupt[i] = char(corrupt[i] ^ 0x5a);
    s = img("gz-corrupt", corrupt);
    CHECK_MSG(s.code == Code::DataFormat && s.offset >= 0 && s.message.find("gzip") != std::string::npos, s.message);
    std::string crc = gz;
    crc[crc.size() - 6] = char(crc[crc.size() - 6] ^ 1);  // the CRC-32 trailer
    s = img("gz-crc", crc);
    CHECK_MSG(s.code == Code::DataFormat && s.message.find("gzip") != std::string::npos, s.message);
    s = img("gz-trailing", gzip_bytes(im + "x"));
    check_error(s, Code::DataFormat, -1, -1, int64_t(im.size()), "gzip with trailing bytes");
    s = img("gz-short", gzip_bytes(im.substr(0, 30)));
    check_error(s, Code::DataFormat, -1, -1, 30, "gzip of a truncated file");
  }
  CHECK(d.rows == 0);  // failed loads leave the output untouched
  check_error(load_idx(g_dir, lp, true, &d), Code::Io, -1, -1, -1, "a directory");
}

// ---------------------------------------------------------------- LIBSVM

void libsvm_good() {
  Dataset d;
  std::string p = write("a.svm", "+1 1:0.5 3:-2 # comment\n-1 2:1e-3 qid:7 4:7\n\n# only a comment\r\n+1 1:1\r\n-1\n");
  CHECK_OK(load_libsvm(p, {}, &d));
  CHECK(d.kind == Kind::Sparse);
  CHECK_EQ(d.rows, uint64_t(4));
  CHECK_EQ(d.features, uint64_t(4));
  CHECK_EQ(d.classes, uint64_t(2));
  CHECK((d.indptr == std::vector<uint64_t>{0, 2, 4, 5, 5}));
  CHECK((d.indices == std::vector<uint32_t>{0, 2, 1, 3, 0}));
  CHECK((d.values == std::vector<float>{0.5f, -2.0f, 1e-3f, 7.0f, 1.0f}));
  CHECK((d.labels == std::vector<float>{1, -1, 1, -1}));
  CHECK((d.classIds == std::vector<int32_t>{1, 0, 1, 0}));
  // 0/1 labels become ±1; 0-based data is detected.
  CHECK_OK(load_libsvm(write("b.svm", "0 0:1 5:2\n1 3:1\n"), {}, &d));
  CHECK_EQ(d.features, uint64_t(6));
  CHECK((d.indices == std::vector<uint32_t>{0, 5, 3}));
  CHECK((d.labels == std::vector<float>{-1, 1}));
  // class ids, forced base, fixed feature count, gzip.
  LibsvmOptions o;
  o.indexBase = 0;
  o.features = 10;
  CHECK_OK(load_libsvm(write("c.svm.gz", gzip_bytes("3 1:1\n0 2:1\n7 9:1\n")), o, &d));
  CHECK_EQ(d.classes, uint64_t(8));
  CHECK_EQ(d.features, uint64_t(10));
  CHECK((d.classIds == std::vector<int32_t>{3, 0, 7}));
  CHECK((d.indices == std::vector<uint32_t>{1, 2, 9}));
  // regression targets.
  CHECK_OK(load_libsvm(write("d.svm", "0.5 1:1\n-2.25 2:1\n"), {}, &d));
  CHECK_EQ(d.classes, uint64_t(0));
  CHECK(d.classIds.empty());
  // a line longer than the reader's chunk.
  std::string longLine = "1";
  for (int i = 1; i <= 150000; ++i) {
    longLine += ' ';
    longLine += std::to_string(i);
    longLine += ":0.25";
  }
  CHECK_OK(load_libsvm(write("long.svm", longLine + "\n-1 3:1"), {}, &d));
  CHECK_EQ(d.indices.size(), size_t(150001));
  CHECK_EQ(d.features, uint64_t(150000));
}

void libsvm_bad() {
  Dataset d;
  LibsvmOptions one;
  one.indexBase = 1;
  auto load = [&](const std::string& text, const LibsvmOptions& o = {}) { return load_libsvm(write("bad.svm", text), o, &d); };
  check_error(load_libsvm(path("missing.svm"), {}, &d), Code::NotFound, -1, -1, -1, "missing");
  check_error(load(""), Code::DataFormat, 1, 1, -1, "empty");
  check_error(load("# nothing\n\n"), Code::DataFormat, 3, 1, -1, "only comments");
  check_error(load("+1 1:1\n-1 0:1 2:1\n", one), Code::DataFormat, 2, 4, -1, "index 0 in 1-based");
  check_error(load("+1 1:1\nabc 2:1\n"), Code::DataFormat, 2, 1, -1, "bad label");
  check_error(load("+1 1:1 2\n"), Code::DataFormat, 1, 8, -1, "token without colon");
  check_error(load("+1 1:1 x:2\n"), Code::DataFormat, 1, 8, -1, "bad index");
  check_error(load("+1 -3:2\n"), Code::DataFormat, 1, 4, -1, "negative index");
  check_error(load("+1 1:1 2:abc\n"), Code::DataFormat, 1, 10, -1, "bad value");
  check_error(load("+1 1:1 2:\n"), Code::DataFormat, 1, 10, -1, "empty value");
  check_error(load("+1 1:1e39\n"), Code::DataFormat, 1, 6, -1, "value beyond float32");
  check_error(load("+1 1:1e999\n"), Code::DataFormat, 1, 6, -1, "value beyond double");
  check_error(load("+1 1:nan\n"), Code::DataFormat, 1, 6, -1, "nan value");
  check_error(load("1e999 1:1\n"), Code::DataFormat, 1, 1, -1, "huge label");
  check_error(load("+1 99999999999:1\n"), Code::DataFormat, 1, 4, -1, "index beyond uint32");
  check_error(load("+1 3:1 2:1\n"), Code::DataFormat, 1, 8, -1, "descending indices");
  check_error(load("+1 3:1 3:1\n"), Code::DataFormat, 1, 8, -1, "duplicate index");
  check_error(load("+1 1:1 qid:x\n"), Code::DataFormat, 1, 12, -1, "bad qid");
  LibsvmOptions f;
  f.features = 3;
  check_error(load("+1 1:1\n-1 2:1 4:1\n", f), Code::DataFormat, 2, 8, -1, "index beyond features (1-based)");
  check_error(load("+1 0:1\n-1 3:1\n", f), Code::DataFormat, 2, 4, -1, "index beyond features (auto, turns out 0-based)");
  std::string gz = gzip_bytes("+1 1:1\n-1 2:1\n");
  gz[gz.size() / 2] = char(gz[gz.size() / 2] ^ 0xff);
  Status s = load_libsvm(write("bad.svm.gz", gz), {}, &d);
  CHECK_MSG(s.code == Code::DataFormat && s.message.find("gzip") != std::string::npos, s.message);
}

// ------------------------------------------------------------------- CSV

void csv_good() {
  Dataset d;
  CsvOptions o;
  o.labelName = "y";
  CHECK_OK(load_csv(write("a.csv", "a,y,b\n1,0,2\n3,1,4.5\r\n\n\"5\", 1 ,-6\n"), o, &d));
  CHECK_EQ(d.rows, uint64_t(3));
  CHECK_EQ(d.features, uint64_t(2));
  CHECK((d.X == std::vector<float>{1, 2, 3, 4.5f, 5, -6}));
  CHECK((d.labels == std::vector<float>{-1, 1, 1}));
  CHECK_EQ(d.classes, uint64_t(2));
  CsvOptions idx;
  idx.labelIndex = 2;  // header auto: the first row is numbers
  CHECK_OK(load_csv(write("b.csv", "1,2,0\n3,4,2\n"), idx, &d));
  CHECK_EQ(d.rows, uint64_t(2));
  CHECK_EQ(d.classes, uint64_t(3));
  idx.labelIndex = 0;
  CHECK_OK(load_csv(write("c.csv", "t,x\n0.5,1\n1.5,2\n"), idx, &d));  // auto: a header
  CHECK_EQ(d.rows, uint64_t(2));
  CHECK_EQ(d.classes, uint64_t(0));
  CHECK_OK(load_csv(write("d.csv.gz", gzip_bytes("1,2\n3,4")), idx, &d));
  CHECK((d.X == std::vector<float>{2, 4}));
}

void csv_bad() {
  Dataset d;
  CsvOptions o;
  o.labelIndex = 0;
  auto load = [&](const std::string& text, const CsvOptions& opt) { return load_csv(write("bad.csv", text), opt, &d); };
  check_error(load_csv(path("missing.csv"), o, &d), Code::NotFound, -1, -1, -1, "missing");
  check_error(load("", o), Code::DataFormat, 1, 1, -1, "empty");
  check_error(load("a,b\n", o), Code::DataFormat, 2, 1, -1, "header only");
  check_error(load("1,2\n3,x\n", o), Code::DataFormat, 2, 3, -1, "non-numeric cell");
  check_error(load("1,2\n3,\n", o), Code::DataFormat, 2, 3, -1, "empty cell");
  check_error(load("1,2\n3,4,5\n", o), Code::DataFormat, 2, 5, -1, "too many cells");
  check_error(load("1,2,3\n3,4\n", o), Code::DataFormat, 2, 4, -1, "too few cells");
  check_error(load("1,2\n3,1e40\n", o), Code::DataFormat, 2, 3, -1, "huge number");
  check_error(load("1,2\n3,\"4\n", o), Code::DataFormat, 2, 3, -1, "unterminated quote");
  check_error(load("1,2\n3,\"4\"x\n", o), Code::DataFormat, 2, 6, -1, "text after a quote");
  CsvOptions header;
  header.labelIndex = 0;
  header.header = 1;
  check_error(load("a,b\n1,2\nq,3\n", header), Code::DataFormat, 3, 1, -1, "bad label cell");
  CsvOptions far;
  far.labelIndex = 5;
  check_error(load("1,2\n", far), Code::DataFormat, 1, 1, -1, "label column beyond");
  CsvOptions name;
  name.labelName = "z";
  check_error(load("a,b\n1,2\n", name), Code::DataFormat, 1, 1, -1, "no such column");
  name.header = 0;
  check_error(load("a,b\n1,2\n", name), Code::Config, -1, -1, -1, "label name without header");
}

// ------------------------------------------------------------- synthetic

bool same(const Dataset& a, const Dataset& b) {
  return a.rows == b.rows && a.features == b.features && a.classes == b.classes && a.labels == b.labels && a.X == b.X &&
         a.indptr == b.indptr && a.indices == b.indices && a.values == b.values && a.user == b.user && a.item == b.item &&
         std::memcmp(a.labels.data(), b.labels.data(), a.labels.size() * 4) == 0 &&
         (a.values.empty() || std::memcmp(a.values.data(), b.values.data(), a.values.size() * 4) == 0) &&
         (a.X.empty() || std::memcmp(a.X.data(), b.X.data(), a.X.size() * 4) == 0);
}

void synthetic_data() {
  SyntheticOptions o;
  o.rows = 2000;
  o.seed = 7;
  Dataset a, b, c;
  CHECK_OK(synthetic("sparse-logistic", o, &a));
  CHECK_OK(synthetic("sparse-logistic", o, &b));
  CHECK(same(a, b));
  o.seed = 8;
  CHECK_OK(synthetic("sparse-logistic", o, &c));
  CHECK(!same(a, c));
  CHECK_EQ(a.features, uint64_t(47236));
  double mean = double(a.indices.size()) / a.rows;
  CHECK_MSG(mean > 70 && mean < 80, "mean nnz " << mean);
  std::vector<uint64_t> freq(a.features);
  for (auto i : a.indices) freq[i]++;
  std::vector<uint64_t> sorted = freq;
  std::sort(sorted.begin(), sorted.end());
  CHECK_MSG(sorted.back() > 100 * (sorted[sorted.size() / 2] + 1), "max " << sorted.back() << " median " << sorted[sorted.size() / 2]);
  bool ascending = true, unit = true;
  for (uint64_t r = 0; r < a.rows; ++r) {
    double n = 0;
    for (uint64_t j = a.indptr[r]; j < a.indptr[r + 1]; ++j) {
      if (j > a.indptr[r] && a.indices[j] <= a.indices[j - 1]) ascending = false;
      n += double(a.values[j]) * a.values[j];
    }
    if (std::fabs(n - 1) > 1e-4) unit = false;
  }
  CHECK(ascending);
  CHECK(unit);
  uint64_t pos = 0;
  for (float y : a.labels) pos += y > 0;
  CHECK_MSG(pos > a.rows / 4 && pos < a.rows * 3 / 4, "positives " << pos);

  SyntheticOptions bo;
  bo.rows = 500;
  bo.features = 4;
  bo.classes = 5;
  CHECK_OK(synthetic("blobs", bo, &a));
  CHECK_OK(synthetic("blobs", bo, &b));
  CHECK(same(a, b));
  CHECK_EQ(a.X.size(), size_t(2000));
  CHECK_EQ(a.classes, uint64_t(5));
  SyntheticOptions ro;
  ro.rows = 3000;
  ro.users = 100;
  ro.items = 80;
  ro.rank = 4;
  ro.noise = 0.1;
  CHECK_OK(synthetic("ratings", ro, &a));
  CHECK_OK(synthetic("ratings", ro, &b));
  CHECK(same(a, b));
  CHECK(a.kind == Kind::Ratings);
  CHECK_EQ(a.user.size(), size_t(3000));
  bool inRange = true;
  for (size_t i = 0; i < a.user.size(); ++i) inRange = inRange && a.user[i] < 100 && a.item[i] < 80;
  CHECK(inRange);
  check_error(synthetic("nope", o, &a), Code::Config, -1, -1, -1, "unknown kind");
  ro.rows = 100 * 80;
  check_error(synthetic("ratings", ro, &a), Code::Config, -1, -1, -1, "too many ratings");

  // slice
  Dataset s;
  CHECK_OK(synthetic("sparse-logistic", o, &a));
  CHECK_OK(slice(a, 10, 20, &s));
  CHECK_EQ(s.rows, uint64_t(10));
  CHECK_EQ(s.indptr[10], a.indptr[20] - a.indptr[10]);
  CHECK_EQ(s.indices[0], a.indices[a.indptr[10]]);
  CHECK_EQ(s.labels[3], a.labels[13]);
  check_error(slice(a, 5, a.rows + 1, &s), Code::InvalidArgument, -1, -1, -1, "slice beyond");
}

}  // namespace

int main() {
  char tmpl[] = "/tmp/gv-data-XXXXXX";
  g_dir = mkdtemp(tmpl);
  idx_good();
  idx_bad();
  libsvm_good();
  libsvm_bad();
  csv_good();
  csv_bad();
  synthetic_data();
  std::filesystem::remove_all(g_dir);
  return gvtest::finish("test_data");
}
