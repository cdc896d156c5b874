// IDX (MNIST, Fashion-MNIST): a big-endian header (0, 0, type, ndim, then
// ndim uint32 sizes) and the data. Only unsigned bytes (type 0x08) are read;
// the sizes are checked against the bytes actually present, both ways.
#include <algorithm>
#include <new>

#include "reader.h"

namespace gv::data {
namespace {

using detail::at_offset;
using detail::Source;

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

// Reads the header; dims gets the sizes.
Status header(Source& src, int wantDims, const char* what, std::vector<uint32_t>* dims) {
  unsigned char magic[4];
  size_t got = 0;
  Status s = src.read(magic, 4, &got);
  if (!s.ok()) return s;
  if (got == 0) return at_offset(src.path(), 0, std::string("empty file (expected an IDX ") + what + " file)");
  if (got < 4) return at_offset(src.path(), got, "truncated IDX header (the magic number is 4 bytes)");
  char hex[16];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", magic[0], magic[1], magic[2], magic[3]);
  if (magic[0] != 0 || magic[1] != 0)
    return at_offset(src.path(), 0, std::string("not an IDX file: magic 0x") + hex + " (expected 0x0000080" + char('0' + wantDims) + ")");
  if (magic[2] != 0x08)
    return at_offset(src.path(), 2, std::string("unsupported IDX element type 0x") + (hex + 4) + " (only 0x08, unsigned byte)");
  int nd = magic[3];
  if (wantDims == 1 ? nd != 1 : nd < 2)
    return at_offset(src.path(), 3,
                     std::string("an IDX ") + what + " file needs " + (wantDims == 1 ? "1 dimension" : "at least 2 dimensions") +
                         ", got " + std::to_string(nd) + " (magic 0x" + hex + ")");
  std::vector<unsigned char> raw(4 * size_t(nd));
  s = src.read(raw.data(), raw.size(), &got);
  if (!s.ok()) return s;
  if (got < raw.size())
    return at_offset(src.path(), 4 + got, "truncated IDX header: " + std::to_string(nd) + " sizes need " +
                                              std::to_string(raw.size()) + " bytes after the magic");
  dims->resize(nd);
  for (int i = 0; i < nd; ++i) {
    (*dims)[i] = be32(&raw[4 * i]);
    if (i > 0 && (*dims)[i] == 0) return at_offset(src.path(), 4 + 4 * i, "dimension " + std::to_string(i) + " is 0");
  }
  return Status::Ok();
}

// Reads exactly n bytes of data in chunks, calling sink(ptr, count, at);
// then checks that nothing follows.
template <class Sink>
Status body(Source& src, uint64_t n, const char* what, Sink sink) {
  std::vector<unsigned char> chunk(1u << 18);
  uint64_t done = 0;
  const uint64_t start = src.offset();
  while (done < n) {
    size_t ask = static_cast<size_t>(std::min<uint64_t>(chunk.size(), n - done));
    size_t got = 0;
    Status s = src.read(chunk.data(), ask, &got);
    if (!s.ok()) return s;
    if (got == 0)
      return at_offset(src.path(), src.offset(),
                       std::string("truncated: the header promises ") + std::to_string(n) + " bytes of " + what + " after byte " +
                           std::to_string(start) + ", the file ends after " + std::to_string(done));
    sink(chunk.data(), got, done);
    done += got;
  }
  unsigned char extra;
  size_t got = 0;
  Status s = src.read(&extra, 1, &got);
  if (!s.ok()) return s;
  if (got != 0)
    return at_offset(src.path(), start + n, std::string("trailing bytes after the ") + std::to_string(n) + " bytes of " + what +
                                                " the header promises (file larger than its header says)");
  return Status::Ok();
}

Status load(const std::string& imagesPath, const std::string& labelsPath, bool scale, Dataset* out) {
  Source li, im;
  Status s = li.open(labelsPath);
  if (!s.ok()) return s;
  s = im.open(imagesPath);
  if (!s.ok()) return s;

  std::vector<uint32_t> ld, id;
  s = header(li, 1, "labels", &ld);
  if (!s.ok()) return s;
  s = header(im, 3, "images", &id);
  if (!s.ok()) return s;
  uint64_t n = id[0];
  uint64_t features = 1;
  for (size_t i = 1; i < id.size(); ++i) features *= id[i];  // < 2^32^k: checked against the file below
  if (features > (uint64_t(1) << 32) || (n > 0 && features > (uint64_t(1) << 40) / n))
    return at_offset(imagesPath, 4, "image dimensions too large");
  const uint64_t bytes = n * features;
  // Each raw file's size is known: a header that does not fit its own file
  // is that file's fault, found before the counts are compared (issue 10:
  // an oversized images header was reported against the labels file) and
  // before anything is allocated. A gzip file inflates at most ~1032:1,
  // which bounds the reservation.
  if (!im.compressed() && im.file_bytes() != im.offset() + bytes)
    return at_offset(imagesPath, im.file_bytes() < im.offset() + bytes ? im.file_bytes() : im.offset() + bytes,
                     "file size " + std::to_string(im.file_bytes()) + " does not match the header (" + std::to_string(im.offset()) +
                         " header bytes + " + std::to_string(n) + " x " + std::to_string(features) + " pixels)");
  if (!li.compressed() && li.file_bytes() != li.offset() + ld[0])
    return at_offset(labelsPath, li.file_bytes() < li.offset() + ld[0] ? li.file_bytes() : li.offset() + ld[0],
                     "file size " + std::to_string(li.file_bytes()) + " does not match the header (8 header bytes + " +
                         std::to_string(ld[0]) + " labels)");
  if (ld[0] != n)
    return at_offset(labelsPath, 4, "label count " + std::to_string(ld[0]) + " does not match the image count " + std::to_string(n) +
                                        " of " + imagesPath);

  Dataset d;
  d.kind = Kind::Dense;
  d.features = features;
  d.labels.reserve(static_cast<size_t>(std::min<uint64_t>(n, li.file_bytes() * 1032 + 64)));
  s = body(li, n, "labels", [&](const unsigned char* p, size_t k, uint64_t) {
    for (size_t i = 0; i < k; ++i) d.labels.push_back(static_cast<float>(p[i]));
  });
  if (!s.ok()) return s;
  uint32_t maxLabel = 0;
  for (size_t i = 0; i < d.labels.size(); ++i) maxLabel = std::max<uint32_t>(maxLabel, static_cast<uint32_t>(d.labels[i]));
  d.X.reserve(static_cast<size_t>(std::min<uint64_t>(bytes, im.file_bytes() * 1032 + 64)));
  const float div = scale ? 255.0f : 1.0f;
  s = body(im, bytes, "pixels", [&](const unsigned char* p, size_t cnt, uint64_t) {
    size_t at = d.X.size();
    d.X.resize(at + cnt);
    float* x = d.X.data() + at;
    for (size_t i = 0; i < cnt; ++i) x[i] = static_cast<float>(p[i]) / div;
  });
  if (!s.ok()) return s;
  d.rows = n;
  d.classes = n ? uint64_t(maxLabel) + 1 : 0;
  d.classIds.resize(d.labels.size());
  for (size_t i = 0; i < d.labels.size(); ++i) d.classIds[i] = static_cast<int32_t>(d.labels[i]);
  *out = std::move(d);
  return Status::Ok();
}

}  // namespace

Status load_idx(const std::string& images, const std::string& labels, bool scale, Dataset* out) {
  try {
    return load(images, labels, scale, out);
  } catch (const std::bad_alloc&) {
    return Status::Error(Code::Internal, images + ": out of memory");
  }
}

}  // namespace gv::data
