// Shared by the libFuzzer targets (scripts/fuzz.sh): the loaders read files,
// so each input is written to an in-memory file (memfd) that they open by
// its /proc/self/fd path, with no disk traffic. A target may only return 0;
// a crash, sanitizer report, leak or FUZZ_CHECK failure is the finding.
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "core/status.h"

// An invariant of the code under test; failing it is a finding, like a crash.
#define FUZZ_CHECK(cond, ...)                                                  \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                       \
      std::fprintf(stderr, "\n");                                              \
      std::abort();                                                            \
    }                                                                          \
  } while (0)

namespace gvfuzz {

// A file in memory, rewritten for each input.
class MemFile {
 public:
  explicit MemFile(const char* name) {
    fd_ = memfd_create(name, MFD_CLOEXEC);
    if (fd_ < 0) {
      std::perror("memfd_create");
      std::abort();
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  const std::string& write(const uint8_t* p, size_t n) {
    if (ftruncate(fd_, 0) != 0 || pwrite(fd_, p, n, 0) != static_cast<ssize_t>(n)) std::abort();
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// The loaders' contract on bad input: a typed error, never Internal (out of
// memory aside), with a message that names the file.
inline void check_refusal(const gv::Status& s, const std::string& file) {
  FUZZ_CHECK(s.code == gv::Code::DataFormat || s.code == gv::Code::Io, "unexpected code %s: %s", gv::code_name(s.code),
             s.message.c_str());
  FUZZ_CHECK(s.message.find(file) != std::string::npos, "the message does not name the file: %s", s.message.c_str());
  FUZZ_CHECK(s.code != gv::Code::DataFormat || s.offset >= 0 || s.line >= 1, "a format error without its position: %s",
             s.message.c_str());
}

}  // namespace gvfuzz
