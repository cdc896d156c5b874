// The strict JSON reader of checkpoints: the safetensors header
// (safetensors.cpp) and the JSON values our metadata holds (metadata.cpp).
// Objects, arrays, strings, numbers (integers exactly, up to 2^62, and every
// number as a double), true/false/null. Depth is bounded; every error is a
// DataFormat Status naming its byte offset (base + position), never an
// exception.
#pragma once
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

#include "../status.h"

namespace gv::st {

class Json {
 public:
  Json(const char* p, size_t n, uint64_t base) : p_(p), n_(n), base_(base) {}

  // A member is a struct, not a std::pair: pair needs Value complete where
  // Value's own vector of members is declared (clang refuses it).
  struct Member;
  using Object = std::vector<Member>;
  struct Value {
    enum Kind { Null, Bool, Int, Real, String, Array, Obj } kind = Null;
    int64_t i = 0;
    double d = 0;  // Int and Real: the number as a double
    bool negative = false;
    std::string s;
    std::vector<Value> a;
    Object o;
    uint64_t at = 0;  // file offset
  };
  struct Member {
    std::string first;
    Value second;
  };

  Status document(Value* v) {
    Status s = value(v, 0);
    if (!s.ok()) return s;
    ws();
    // The Python writer pads the header with spaces; anything else is an error.
    if (i_ != n_) return err("trailing bytes after the header's JSON");
    return Status::Ok();
  }

 private:
  Status err(const std::string& m) {
    // names in the message come from the file: shown escaped
    Status s = Status::Error(Code::DataFormat, "safetensors: " + escape_bytes(m));
    s.offset = static_cast<int64_t>(base_ + i_);
    return s;
  }
  void ws() {
    while (i_ < n_ && (p_[i_] == ' ' || p_[i_] == '\t' || p_[i_] == '\n' || p_[i_] == '\r')) ++i_;
  }
  Status value(Value* v, int depth) {
    if (depth > 16) return err("JSON nested too deep");
    ws();
    if (i_ >= n_) return err("unexpected end of the header");
    v->at = base_ + i_;
    const char c = p_[i_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v->kind = Value::String;
      return string(&v->s);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    if (match("true")) {
      v->kind = Value::Bool;
      v->i = 1;
      return Status::Ok();
    }
    if (match("false")) {
      v->kind = Value::Bool;
      return Status::Ok();
    }
    if (match("null")) return Status::Ok();
    return err(std::string("unexpected character '") + c + "' in the header");
  }
  bool match(const char* w) {
    size_t l = std::strlen(w);
    if (n_ - i_ >= l && std::memcmp(p_ + i_, w, l) == 0) {
      i_ += l;
      return true;
    }
    return false;
  }
  Status object(Value* v, int depth) {
    v->kind = Value::Obj;
    ++i_;
    ws();
    if (i_ < n_ && p_[i_] == '}') {
      ++i_;
      return Status::Ok();
    }
    for (;;) {
      ws();
      if (i_ >= n_ || p_[i_] != '"') return err("expected a string key");
      std::string key;
      Status s = string(&key);
      if (!s.ok()) return s;
      ws();
      if (i_ >= n_ || p_[i_] != ':') return err("expected ':'");
      ++i_;
      Value child;
      if (!(s = value(&child, depth + 1)).ok()) return s;
      v->o.push_back(Member{std::move(key), std::move(child)});
      ws();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < n_ && p_[i_] == '}') {
        ++i_;
        return Status::Ok();
      }
      return err("expected ',' or '}'");
    }
  }
  Status array(Value* v, int depth) {
    v->kind = Value::Array;
    ++i_;
    ws();
    if (i_ < n_ && p_[i_] == ']') {
      ++i_;
      return Status::Ok();
    }
    for (;;) {
      Value child;
      Status s = value(&child, depth + 1);
      if (!s.ok()) return s;
      v->a.push_back(std::move(child));
      ws();
      if (i_ < n_ && p_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < n_ && p_[i_] == ']') {
        ++i_;
        return Status::Ok();
      }
      return err("expected ',' or ']'");
    }
  }
  Status number(Value* v) {
    const size_t start = i_;
    if (p_[i_] == '-') {
      v->negative = true;
      ++i_;
    }
    if (i_ >= n_ || p_[i_] < '0' || p_[i_] > '9') return err("bad number");
    uint64_t x = 0;
    bool overflow = false;
    while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') {
      const uint64_t d = static_cast<uint64_t>(p_[i_] - '0');
      if (x > (UINT64_MAX - d) / 10 || x * 10 + d > (uint64_t{1} << 62)) overflow = true;
      x = x * 10 + d;
      ++i_;
    }
    v->kind = Value::Int;
    if (i_ < n_ && (p_[i_] == '.' || p_[i_] == 'e' || p_[i_] == 'E')) {
      v->kind = Value::Real;  // allowed in metadata-free places only; never a valid shape or offset
      ++i_;
      while (i_ < n_ && ((p_[i_] >= '0' && p_[i_] <= '9') || p_[i_] == '+' || p_[i_] == '-' || p_[i_] == 'e' || p_[i_] == 'E'))
        ++i_;
    }
    if (overflow && v->kind == Value::Int) {
      i_ = start;
      return err("number too large");
    }
    // The whole token must be one JSON number ('1.e', '1e+-2' are not).
    const auto [end, ec] = std::from_chars(p_ + start, p_ + i_, v->d);
    if (ec != std::errc() || end != p_ + i_ || (v->kind == Value::Real && (p_[i_ - 1] < '0' || p_[i_ - 1] > '9'))) {
      i_ = start;
      return err("bad number");
    }
    v->i = v->negative ? -static_cast<int64_t>(x) : static_cast<int64_t>(x);
    return Status::Ok();
  }
  static void utf8(uint32_t c, std::string* out) {
    if (c < 0x80) {
      out->push_back(static_cast<char>(c));
    } else if (c < 0x800) {
      out->push_back(static_cast<char>(0xC0 | (c >> 6)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else if (c < 0x10000) {
      out->push_back(static_cast<char>(0xE0 | (c >> 12)));
      out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    } else {
      out->push_back(static_cast<char>(0xF0 | (c >> 18)));
      out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
      out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
  }
  Status hex4(uint32_t* out) {
    if (n_ - i_ < 4) return err("bad \\u escape");
    uint32_t c = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = p_[i_++];
      c <<= 4;
      if (h >= '0' && h <= '9') c |= h - '0';
      else if (h >= 'a' && h <= 'f') c |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') c |= h - 'A' + 10;
      else return err("bad \\u escape");
    }
    *out = c;
    return Status::Ok();
  }
  Status string(std::string* out) {
    ++i_;  // the opening quote
    for (;;) {
      if (i_ >= n_) return err("unterminated string");
      const unsigned char c = static_cast<unsigned char>(p_[i_]);
      if (c == '"') {
        ++i_;
        return Status::Ok();
      }
      if (c < 0x20) return err("control character in a string");
      if (c != '\\') {
        out->push_back(static_cast<char>(c));
        ++i_;
        continue;
      }
      if (++i_ >= n_) return err("unterminated escape");
      const char e = p_[i_++];
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          uint32_t c1 = 0;
          Status s = hex4(&c1);
          if (!s.ok()) return s;
          if (c1 >= 0xD800 && c1 < 0xDC00) {  // a surrogate pair
            uint32_t c2 = 0;
            if (n_ - i_ < 2 || p_[i_] != '\\' || p_[i_ + 1] != 'u') return err("lone surrogate in a string");
            i_ += 2;
            if (!(s = hex4(&c2)).ok()) return s;
            if (c2 < 0xDC00 || c2 >= 0xE000) return err("bad surrogate pair in a string");
            c1 = 0x10000 + ((c1 - 0xD800) << 10) + (c2 - 0xDC00);
          } else if (c1 >= 0xDC00 && c1 < 0xE000) {
            return err("lone surrogate in a string");
          }
          utf8(c1, out);
          break;
        }
        default: return err(std::string("bad escape '\\") + e + "'");
      }
    }
  }

  const char* p_;
  size_t n_;
  uint64_t base_;
  size_t i_ = 0;
};

}  // namespace gv::st
