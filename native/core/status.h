// Errors cross the core boundary as a Status, never as an exception.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

namespace gv {

enum class Code : int {
  Ok = 0,
  Config,           // a configuration field is invalid (field names its path)
  InvalidArgument,  // a call argument is invalid (field names it)
  Shape,            // a gradient's size does not match its tensor
  NonFinite,        // NaN or infinity in a gradient (tensor, index)
  Overflow,         // a fixed-point value would leave its range (deterministic, averaging)
  Closed,           // the store was closed
  DataFormat,       // a malformed data file (file, line and column, or byte offset)
  NotFound,         // a file that does not exist (file)
  Io,               // a file that exists but cannot be read (file)
  Internal,
};

// Stable string codes, e.g. "ERR_NON_FINITE" (the JS errors' `code`).
inline const char* code_name(Code c) {
  switch (c) {
    case Code::Ok: return "OK";
    case Code::Config: return "ERR_CONFIG";
    case Code::InvalidArgument: return "ERR_INVALID_ARGUMENT";
    case Code::Shape: return "ERR_SHAPE";
    case Code::NonFinite: return "ERR_NON_FINITE";
    case Code::Overflow: return "ERR_OVERFLOW";
    case Code::Closed: return "ERR_CLOSED";
    case Code::DataFormat: return "ERR_DATA_FORMAT";
    case Code::NotFound: return "ERR_NOT_FOUND";
    case Code::Io: return "ERR_IO";
    case Code::Internal: return "ERR_INTERNAL";
  }
  return "ERR_INTERNAL";
}

struct Status {
  Code code = Code::Ok;
  std::string message;
  std::string field;   // config path or argument name, when there is one
  int64_t tensor = -1;  // tensor index, when one is at fault
  std::string tensorName;  // a file's tensor at fault, by name (checkpoints: it may be no store's tensor)
  int64_t index = -1;   // element index within it
  std::string file;     // data files: the file at fault
  int64_t line = -1;    // text data files: 1-based line and column of the first bad token
  int64_t column = -1;
  int64_t offset = -1;  // binary data files: byte offset (of the uncompressed stream)

  bool ok() const { return code == Code::Ok; }
  static Status Ok() { return {}; }
  static Status Error(Code c, std::string msg, std::string field = {}) {
    Status s;
    s.code = c;
    s.message = std::move(msg);
    s.field = std::move(field);
    return s;
  }
};

// Bytes from a file as shown in messages: printable ASCII as it is, every
// other byte (controls, NUL, a BOM, binary junk, non-ASCII) as \xNN and a
// backslash as \\, so a message is one readable line that says exactly
// which bytes were there.
inline std::string escape_bytes(std::string_view t) {
  static const char* hex = "0123456789ABCDEF";
  std::string r;
  r.reserve(t.size());
  for (unsigned char c : t) {
    if (c == '\\') {
      r += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      r += static_cast<char>(c);
    } else {
      r += "\\x";
      r += hex[c >> 4];
      r += hex[c & 15];
    }
  }
  return r;
}

// A configuration name -> enum value: names[i] is the name of value i. An
// unknown name is an ERR_CONFIG Status naming the field, the value and every
// name it could have been, never a default.
template <class E, size_t N>
Status parse_named(const std::string& s, const char* const (&names)[N], const char* field, E* out) {
  std::string known;
  for (size_t i = 0; i < N; ++i) {
    if (s == names[i]) {
      *out = static_cast<E>(i);
      return Status::Ok();
    }
    known += (i ? ", '" : "'") + std::string(names[i]) + "'";
  }
  return Status::Error(Code::Config, std::string(field) + " must be one of " + known + ", got '" + escape_bytes(s) + "'", field);
}

}  // namespace gv
