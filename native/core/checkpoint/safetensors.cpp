// The safetensors format, both ways (safetensors.h). One file, over 500
// lines, on purpose: the header parser, its checks (each naming the byte
// offset) and the crash-safe writer are one format and change together.
#include "safetensors.h"
#include "json.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <unordered_set>

namespace gv::st {

const Tensor* Header::find(const std::string& name) const {
  for (const Tensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

const std::string* Header::meta(const std::string& key) const {
  for (const auto& kv : metadata)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

size_t dtype_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

namespace {

Status format_error(const std::string& msg, uint64_t offset) {
  // names in the message come from the file: shown escaped
  Status s = Status::Error(Code::DataFormat, "safetensors: " + escape_bytes(msg));
  s.offset = static_cast<int64_t>(offset);
  return s;
}

}  // namespace

Status parse(const uint8_t* bytes, size_t n, uint64_t fileSize, Header* out, uint64_t* need) {
  *out = Header{};
  if (fileSize < 8 || n < 8) return format_error(std::string("file of ") + std::to_string(fileSize) + " bytes is too short for the 8-byte header length", 0);
  uint64_t len = 0;
  for (int k = 7; k >= 0; --k) len = (len << 8) | bytes[k];
  if (len > kMaxHeader)
    return format_error(std::string("header length ") + std::to_string(len) + std::string(" exceeds the limit of ") + std::to_string(kMaxHeader) + " bytes", 0);
  if (len < 2) return format_error(std::string("header length ") + std::to_string(len) + " is too small for a JSON object", 0);
  if (8 + len > fileSize)
    return format_error(std::string("header length ") + std::to_string(len) + std::string(" runs past the end of the file (") + std::to_string(fileSize) + " bytes)", 0);
  *need = 8 + len;
  if (n < 8 + len) return Status::Ok();  // the caller reads more and calls again
  Json::Value root;
  Json json(reinterpret_cast<const char*>(bytes + 8), len, 8);
  Status s = json.document(&root);
  if (!s.ok()) return s;
  if (root.kind != Json::Value::Obj) return format_error("the header is not a JSON object", 8);
  out->dataStart = 8 + len;
  const uint64_t dataBytes = fileSize - out->dataStart;
  std::unordered_set<std::string> names;
  for (auto& [name, v] : root.o) {
    if (!names.insert(name).second) return format_error("tensor '" + name + "' appears twice", v.at);
    if (name == "__metadata__") {
      if (v.kind != Json::Value::Obj) return format_error("__metadata__ must be an object of strings", v.at);
      std::unordered_set<std::string> keys;
      for (auto& [k, mv] : v.o) {
        if (mv.kind != Json::Value::String) return format_error("__metadata__." + k + " must be a string", mv.at);
        // Which of two values a reader takes is up to it: refused, as a tensor named twice.
        if (!keys.insert(k).second) return format_error("__metadata__." + k + " appears twice", mv.at);
        out->metadata.emplace_back(k, mv.s);
      }
      continue;
    }
    if (v.kind != Json::Value::Obj) return format_error("tensor '" + name + "' must be an object", v.at);
    Tensor t;
    t.name = name;
    bool haveDtype = false, haveShape = false, haveOffsets = false;
    for (auto& [k, f] : v.o) {
      if (k == "dtype") {
        if (f.kind != Json::Value::String || dtype_size(f.s) == 0)
          return format_error("tensor '" + name + "' has an unknown dtype", f.at);
        t.dtype = f.s;
        haveDtype = true;
      } else if (k == "shape") {
        if (f.kind != Json::Value::Array || f.a.size() > 8) return format_error("tensor '" + name + "' has a bad shape", f.at);
        for (auto& d : f.a) {
          if (d.kind != Json::Value::Int || d.negative || d.i > (int64_t{1} << 40))
            return format_error("tensor '" + name + "' has a bad shape entry", d.at);
          t.shape.push_back(d.i);
        }
        haveShape = true;
      } else if (k == "data_offsets") {
        if (f.kind != Json::Value::Array || f.a.size() != 2) return format_error("tensor '" + name + "' needs data_offsets [begin, end]", f.at);
        for (auto& d : f.a)
          if (d.kind != Json::Value::Int || d.negative) return format_error("tensor '" + name + "' has a bad data offset", d.at);
        t.begin = static_cast<uint64_t>(f.a[0].i);
        t.end = static_cast<uint64_t>(f.a[1].i);
        haveOffsets = true;
      } else {
        return format_error("tensor '" + name + "' has an unknown field '" + k + "'", f.at);
      }
    }
    if (!haveDtype || !haveShape || !haveOffsets)
      return format_error("tensor '" + name + "' needs dtype, shape and data_offsets", v.at);
    if (t.end < t.begin) return format_error("tensor '" + name + "' ends before it begins", v.at);
    // numel * size must equal the byte span (checked without overflow)
    long double numel = 1;
    for (int64_t d : t.shape) numel *= static_cast<long double>(d);
    const long double want = numel * dtype_size(t.dtype);
    if (want != static_cast<long double>(t.end - t.begin))
      return format_error("tensor '" + name + std::string("' has ") + std::to_string(t.end - t.begin) + " bytes, its shape and dtype need " +
                              std::to_string(static_cast<unsigned long long>(want)),
                          v.at);
    out->tensors.push_back(std::move(t));
  }
  // The tensors tile the data section exactly: sorted by offset, each begins
  // where the previous ended, the last ends at the end of the file.
  std::sort(out->tensors.begin(), out->tensors.end(), [](const Tensor& a, const Tensor& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  for (const Tensor& t : out->tensors) {
    if (t.begin != at)
      return format_error("tensor '" + t.name + std::string("' begins at data offset ") + std::to_string(t.begin) + std::string(", expected ") + std::to_string(at) +
                              (t.begin < at ? " (it overlaps the previous tensor)" : " (a gap before it)"),
                          out->dataStart + std::min(t.begin, dataBytes));
    at = t.end;
  }
  if (at != dataBytes)
    return format_error(std::string("the tensors cover ") + std::to_string(at) + std::string(" data bytes, the file holds ") + std::to_string(dataBytes),
                        out->dataStart + std::min(at, dataBytes));
  return Status::Ok();
}

Status read(const std::string& file, uint64_t maxBytes, Header* header, std::vector<uint8_t>* data) {
  auto io = [&](Code c, const std::string& m) {
    Status s = Status::Error(c, m + ": " + file);
    s.file = file;
    return s;
  };
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
  // writer forever (issue 10: load() of a FIFO hung the process). It is
  // refused below as not a regular file; for a regular file the flag
  // changes nothing.
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return io(errno == ENOENT || errno == ENOTDIR ? Code::NotFound : Code::Io, std::string("cannot open (") + std::strerror(errno) + ")");
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    ::close(fd);
    return io(Code::Io, "not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  auto readAll = [&](uint8_t* dst, uint64_t n, uint64_t off) -> bool {
    while (n > 0) {
      ssize_t r = ::pread(fd, dst, n, static_cast<off_t>(off));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      dst += r;
      n -= static_cast<uint64_t>(r);
      off += static_cast<uint64_t>(r);
    }
    return true;
  };
  uint8_t head[8] = {0};
  uint64_t need = 0;
  Status s;
  if (size >= 8 && !readAll(head, 8, 0)) {
    ::close(fd);
    return io(Code::Io, "read failed");
  }
  s = parse(head, size >= 8 ? 8 : 0, size, header, &need);
  if (s.ok()) {
    std::vector<uint8_t> hb(need);
    if (!readAll(hb.data(), need, 0)) s = io(Code::Io, "read failed");
    else s = parse(hb.data(), need, size, header, &need);
  }
  if (s.ok() && size > maxBytes)
    s = format_error(std::string("file of ") + std::to_string(size) + std::string(" bytes exceeds the limit of ") + std::to_string(maxBytes), 0);
  if (s.ok()) {
    try {
      data->resize(size - header->dataStart);
    } catch (const std::bad_alloc&) {
      s = io(Code::Io, "not enough memory to read");
    }
    if (s.ok() && !readAll(data->data(), data->size(), header->dataStart)) s = io(Code::Io, "read failed");
  }
  ::close(fd);
  if (!s.ok() && s.file.empty()) {
    s.file = file;
    s.message = file + ": " + s.message;
  }
  return s;
}

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else o += static_cast<char>(c);
  }
  return o + "\"";
}

namespace {

std::string dir_of(const std::string& file) {
  size_t k = file.find_last_of('/');
  return k == std::string::npos ? "." : k == 0 ? "/" : file.substr(0, k);
}
std::string base_of(const std::string& file) {
  size_t k = file.find_last_of('/');
  return k == std::string::npos ? file : file.substr(k + 1);
}
std::string temp_prefix(const std::string& file) {
  std::string p = ".";  // appended piecewise: g++ 12 -O3 warns falsely (-Wrestrict) on "." + std::string
  p += base_of(file);
  p += ".tmp-";
  return p;
}

// "<pid>-<random>" with both decimal, pid in 1..2^31-1 and no leading zero:
// the suffix write() gives its temporaries.
bool temporary_pid(const std::string& rest, long* pid) {
  const size_t dash = rest.find('-');
  if (dash == std::string::npos || dash == 0 || dash > 10 || dash + 1 == rest.size() || rest.size() - dash - 1 > 10) return false;
  for (size_t i = 0; i < rest.size(); ++i)
    if (i != dash && (rest[i] < '0' || rest[i] > '9')) return false;
  if (rest[0] == '0') return false;
  const long p = std::strtol(rest.c_str(), nullptr, 10);
  if (p <= 0 || p > 2147483647L) return false;
  *pid = p;
  return true;
}

}  // namespace

size_t sweep_temporaries(const std::string& file) {
  const std::string dir = dir_of(file), prefix = temp_prefix(file);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return 0;
  size_t removed = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind(prefix, 0) != 0) continue;
    // Exactly .<name>.tmp-<pid>-<random>, as write() names them (decimal
    // digits, pid > 0): anything else is a user's file that happens to share
    // the prefix (issue 10: '.model.safetensors.tmp-notes.txt' was taken for
    // pid 0's and deleted). Removed only when that process is gone; kill(pid,
    // 0) fails with EPERM for a live process of another user: alive.
    long pid = 0;
    if (!temporary_pid(n.substr(prefix.size()), &pid)) continue;
    if (pid == static_cast<long>(::getpid())) continue;  // ours: a writer in this process may be at work
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM) continue;
    if (::unlink((dir + "/" + n).c_str()) == 0) ++removed;
  }
  ::closedir(d);
  return removed;
}

Status write(const std::string& file, const std::vector<OutTensor>& tensors,
             const std::vector<std::pair<std::string, std::string>>& metadata) {
  auto io = [&](const std::string& what) {
    Status s = Status::Error(Code::Io, file + ": " + what + " (" + std::strerror(errno) + ")");
    s.file = file;
    return s;
  };
  // header
  std::string h = "{";
  if (!metadata.empty()) {
    h += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i)
      h += std::string(i ? "," : "") + json_string(metadata[i].first) + ":" + json_string(metadata[i].second);
    h += "}";
  }
  uint64_t at = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const OutTensor& t = tensors[i];
    std::string shape;
    for (size_t k = 0; k < t.shape.size(); ++k) shape += std::string(k ? "," : "") + std::to_string(t.shape[k]);
    h += std::string(metadata.empty() && i == 0 ? "" : ",") + json_string(t.name) + ":{\"dtype\":\"" + t.dtype + "\",\"shape\":[" + shape +
         "],\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(at + t.bytes) + "]}";
    at += t.bytes;
  }
  h += "}";
  while ((8 + h.size()) % 8) h += ' ';  // the data starts 8-byte aligned, as the Python writer does
  sweep_temporaries(file);
  std::random_device rd;
  const std::string tmp = dir_of(file) + "/" + temp_prefix(file) + std::to_string(::getpid()) + std::string("-") + std::to_string(rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return io("cannot create a temporary file beside it");
  auto writeAll = [&](const void* p, uint64_t n) -> bool {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd, c, std::min<uint64_t>(n, uint64_t{1} << 30));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      c += w;
      n -= static_cast<uint64_t>(w);
    }
    return true;
  };
  uint8_t len[8];
  for (int k = 0; k < 8; ++k) len[k] = static_cast<uint8_t>(static_cast<uint64_t>(h.size()) >> (8 * k));
  bool ok = writeAll(len, 8) && writeAll(h.data(), h.size());
  for (size_t i = 0; ok && i < tensors.size(); ++i) ok = writeAll(tensors[i].data, tensors[i].bytes);
  if (ok) ok = ::fsync(fd) == 0;
  Status s;
  if (!ok) s = io("write failed");
  if (::close(fd) != 0 && s.ok()) s = io("close failed");
  if (s.ok() && ::rename(tmp.c_str(), file.c_str()) != 0) s = io("cannot rename the temporary file over it");
  if (!s.ok()) {
    ::unlink(tmp.c_str());  // the old file, if any, is untouched
    return s;
  }
  // The rename is durable once the folder is synced.
  int dfd = ::open(dir_of(file).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

}  // namespace gv::st
