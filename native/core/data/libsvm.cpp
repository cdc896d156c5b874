// LIBSVM / SVMLight text, streamed line by line into CSR.
#include <algorithm>
#include <new>

#include "reader.h"

namespace gv::data {
namespace {

using detail::at_line;
using detail::show;

bool space(char c) { return c == ' ' || c == '\t'; }

Status load(const std::string& file, const LibsvmOptions& o, Dataset* out) {
  detail::Source src;
  Status s = src.open(file);
  if (!s.ok()) return s;
  detail::LineReader lines(src);
  Dataset d;
  d.kind = Kind::Sparse;
  d.indptr.push_back(0);
  uint64_t maxIndex = 0;
  bool sawZero = false;
  // Where the largest index was first seen, for an error against `features`.
  uint64_t maxLine = 0, maxCol = 0;
  std::string_view line;
  bool have = false;
  for (;;) {
    s = lines.next(&line, &have);
    if (!s.ok()) return s;
    if (!have) break;
    const uint64_t ln = lines.line_number();
    size_t hash = line.find('#');
    std::string_view body = hash == std::string_view::npos ? line : line.substr(0, hash);
    size_t i = 0;
    auto col = [&](size_t at) { return static_cast<uint64_t>(at) + 1; };
    while (i < body.size() && space(body[i])) ++i;
    if (i == body.size()) continue;  // blank or comment-only line
    size_t b = i;
    while (i < body.size() && !space(body[i])) ++i;
    float label;
    const char* why = nullptr;
    if (!detail::parse_float(body.substr(b, i - b), &label, &why))
      return at_line(file, ln, col(b), std::string("bad label ") + show(body.substr(b, i - b)) + ": " + why);
    int64_t prev = -1;
    for (;;) {
      while (i < body.size() && space(body[i])) ++i;
      if (i == body.size()) break;
      b = i;
      while (i < body.size() && !space(body[i])) ++i;
      std::string_view tok = body.substr(b, i - b);
      size_t colon = tok.find(':');
      if (colon == std::string_view::npos)
        return at_line(file, ln, col(b), "expected index:value, got " + show(tok));
      std::string_view key = tok.substr(0, colon), val = tok.substr(colon + 1);
      if (key == "qid") {
        uint64_t q;
        if (!detail::parse_uint(val, &q)) return at_line(file, ln, col(b + colon + 1), "bad qid " + show(val));
        continue;  // query ids (ranking data) are ignored
      }
      uint64_t idx;
      if (!detail::parse_uint(key, &idx) || idx >= 0xFFFFFFFFull)
        return at_line(file, ln, col(b), "bad feature index " + show(key) + " (expected an integer below 4294967295)");
      if (idx == 0) {
        if (o.indexBase == 1) return at_line(file, ln, col(b), "feature index 0 in 1-based data (indexBase: 1)");
        sawZero = true;
      }
      if (static_cast<int64_t>(idx) <= prev)
        return at_line(file, ln, col(b), "feature index " + std::to_string(idx) + " after " + std::to_string(prev) +
                                             ": indices must be strictly ascending within a line");
      prev = static_cast<int64_t>(idx);
      float v;
      if (!detail::parse_float(val, &v, &why))
        return at_line(file, ln, col(b + colon + 1), std::string("bad value ") + show(val) + ": " + why);
      uint64_t zeroBased = o.indexBase == 0 ? idx : o.indexBase == 1 ? idx - 1 : idx;  // auto: fixed up at the end
      if (o.features > 0) {
        uint64_t limit = o.indexBase == 0 ? o.features : o.features + (o.indexBase == 1 ? 0 : 1);
        // auto: index `features` is legal only if the data turns out 1-based; checked again below.
        if ((o.indexBase == 1 ? idx > o.features : zeroBased >= limit))
          return at_line(file, ln, col(b), "feature index " + std::to_string(idx) + " is beyond features: " +
                                               std::to_string(o.features));
      }
      if (idx > maxIndex || maxLine == 0) {
        maxIndex = std::max(maxIndex, idx);
        maxLine = ln;
        maxCol = col(b);
      }
      d.indices.push_back(static_cast<uint32_t>(zeroBased));
      d.values.push_back(v);
    }
    d.labels.push_back(label);
    d.indptr.push_back(d.indices.size());
  }
  if (d.labels.empty()) return at_line(file, lines.line_number() + 1, 1, "no data rows");
  const bool oneBased = o.indexBase == 1 || (o.indexBase == -1 && !sawZero);
  if (o.indexBase == -1 && oneBased)
    for (auto& x : d.indices) --x;
  uint64_t seen = d.indices.empty() ? 0 : (oneBased ? maxIndex : maxIndex + 1);
  if (o.features > 0) {
    if (seen > o.features)
      return at_line(file, maxLine, maxCol, "feature index " + std::to_string(maxIndex) + " is beyond features: " +
                                                std::to_string(o.features) + " (the data has an index 0, so it is 0-based)");
    d.features = o.features;
  } else {
    d.features = seen;
  }
  d.rows = d.labels.size();
  detail::finish_labels(&d);
  *out = std::move(d);
  return Status::Ok();
}

}  // namespace

Status load_libsvm(const std::string& file, const LibsvmOptions& o, Dataset* out) {
  if (o.indexBase < -1 || o.indexBase > 1)
    return Status::Error(Code::Config, "indexBase must be -1 (auto), 0 or 1, got " + std::to_string(o.indexBase), "indexBase");
  try {
    return load(file, o, out);
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, file + ": out of memory");
  }
}

}  // namespace gv::data
