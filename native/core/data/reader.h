// Streaming input for the loaders: a file read in chunks through zlib, which
// inflates gzip (1f 8b) and passes any other file through unchanged, so the
// same code reads raw and compressed data. Offsets count uncompressed bytes.
#pragma once
#include <zlib.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <vector>

#include "dataset.h"

namespace gv::data::detail {

inline Status file_error(Code c, const std::string& file, std::string msg) {
  Status s = Status::Error(c, file + ": " + msg);
  s.file = file;
  return s;
}

inline Status at_offset(const std::string& file, uint64_t offset, const std::string& msg) {
  Status s = Status::Error(Code::DataFormat, file + ": byte " + std::to_string(offset) + ": " + msg);
  s.file = file;
  s.offset = static_cast<int64_t>(offset);
  return s;
}

inline Status at_line(const std::string& file, uint64_t line, uint64_t column, const std::string& msg) {
  Status s = Status::Error(Code::DataFormat, file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + msg);
  s.file = file;
  s.line = static_cast<int64_t>(line);
  s.column = static_cast<int64_t>(column);
  return s;
}

// A token as shown in messages: at most 40 bytes of it, escaped.
inline std::string show(std::string_view t) {
  // Appended piecewise: g++ 12 -O3 warns falsely (-Wrestrict) on "'" + std::string.
  std::string r;
  r.reserve(48);
  r += '\'';
  r.append(escape_bytes(t.substr(0, 40)));
  if (t.size() > 40) r.append("...");
  r += '\'';
  return r;
}

class Source {
 public:
  Source() = default;
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;
  ~Source() {
    if (f_) gzclose(f_);
  }

  Status open(const std::string& path) {
    path_ = path;
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR)
        return file_error(Code::NotFound, path, "no such file");
      return file_error(Code::Io, path, std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) return file_error(Code::Io, path, "not a regular file");
    fileBytes_ = static_cast<uint64_t>(st.st_size);
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) return file_error(Code::Io, path, errno ? std::strerror(errno) : "cannot open");
    gzbuffer(f_, 1u << 18);
    return Status::Ok();
  }

  // Whether the file is gzip (known after open: zlib looks at the magic).
  bool compressed() { return gzdirect(f_) == 0; }
  uint64_t file_bytes() const { return fileBytes_; }
  uint64_t offset() const { return offset_; }
  const std::string& path() const { return path_; }

  // Reads up to n bytes; *got is how many (0 at the end). A corrupt or
  // truncated gzip stream is a DataFormat error at the current offset.
  Status read(void* dst, size_t n, size_t* got) {
    *got = 0;
    char* p = static_cast<char*>(dst);
    while (n > 0) {
      unsigned ask = n > (1u << 30) ? (1u << 30) : static_cast<unsigned>(n);
      int r = gzread(f_, p, ask);
      if (r < 0) {
        int err = 0;
        const char* m = gzerror(f_, &err);
        if (err == Z_ERRNO) return file_error(Code::Io, path_, std::strerror(errno));
        return at_offset(path_, offset_, std::string("corrupt gzip stream (") + (m ? m : "?") + ")");
      }
      if (r == 0) {
        // zlib reports a gzip stream cut short as a clean end with an error set.
        int err = 0;
        const char* m = gzerror(f_, &err);
        if (err != Z_OK && err != Z_STREAM_END)
          return at_offset(path_, offset_, std::string("corrupt or truncated gzip stream (") + (m ? m : "?") + ")");
        break;
      }
      p += r;
      n -= static_cast<size_t>(r);
      *got += static_cast<size_t>(r);
      offset_ += static_cast<uint64_t>(r);
    }
    return Status::Ok();
  }

 private:
  gzFile f_ = nullptr;
  std::string path_;
  uint64_t fileBytes_ = 0;
  uint64_t offset_ = 0;
};

// Text lines, read in chunks; a line may be longer than a chunk. '\r' before
// '\n' is dropped. Lines are views into the reader's buffer, valid until the
// next call.
class LineReader {
 public:
  explicit LineReader(Source& src) : src_(src) { buf_.resize(kChunk); }

  // *line is the next line (without its end); returns false at the end.
  Status next(std::string_view* line, bool* have) {
    *have = false;
    for (;;) {
      const char* begin = buf_.data() + pos_;
      const void* nl = std::memchr(begin, '\n', end_ - pos_);
      if (nl) {
        size_t len = static_cast<const char*>(nl) - begin;
        emit(begin, len, line);
        pos_ += len + 1;
        *have = true;
        return Status::Ok();
      }
      if (eof_) {
        if (pos_ == end_) return Status::Ok();
        emit(begin, end_ - pos_, line);
        pos_ = end_;
        *have = true;
        return Status::Ok();
      }
      // Move the partial line to the front, grow when it fills the buffer, read more.
      if (pos_ > 0) {
        std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
      }
      if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);
      size_t got = 0;
      Status s = src_.read(buf_.data() + end_, buf_.size() - end_, &got);
      if (!s.ok()) return s;
      if (got == 0) eof_ = true;
      end_ += got;
    }
  }
  uint64_t line_number() const { return lineNo_; }

 private:
  static constexpr size_t kChunk = 1u << 20;
  void emit(const char* p, size_t len, std::string_view* line) {
    if (len > 0 && p[len - 1] == '\r') --len;
    *line = std::string_view(p, len);
    ++lineNo_;
  }
  Source& src_;
  std::vector<char> buf_;
  size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  uint64_t lineNo_ = 0;
};

// A finite float from a whole token; false with a reason otherwise.
inline bool parse_float(std::string_view t, float* out, const char** why) {
  if (t.empty()) {
    *why = "empty number";
    return false;
  }
  const char* b = t.data();
  const char* e = b + t.size();
  if (*b == '+') ++b;  // from_chars refuses a leading '+'
  double d = 0;
  auto r = std::from_chars(b, e, d);
  if (r.ec == std::errc::result_out_of_range) {
    *why = "number out of range";
    return false;
  }
  if (r.ec != std::errc() || r.ptr != e || b == e) {
    *why = "not a number";
    return false;
  }
  if (!std::isfinite(d)) {
    *why = "not a finite number";
    return false;
  }
  if (std::fabs(d) > 3.4028234663852886e38) {
    *why = "number out of float32 range";
    return false;
  }
  *out = static_cast<float>(d);
  return true;
}

inline bool parse_uint(std::string_view t, uint64_t* out) {
  if (t.empty()) return false;
  auto r = std::from_chars(t.data(), t.data() + t.size(), *out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

// Sets classes/classIds from float labels: ±1 or 0/1 → binary (labels
// become ±1, ids 0/1); non-negative integers → class ids; else regression.
void finish_labels(Dataset* d);

}  // namespace gv::data::detail
