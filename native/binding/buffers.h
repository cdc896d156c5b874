// Memory the binding lends to JavaScript (snapshot buffers) or keeps for a
// pool thread (pushAsync's gradient copies).
#pragma once
#include <napi.h>

#include <cstddef>

namespace gv::binding {

// A gradient copied for pushAsync: large ones in pooled memory too.
class OwnedCopy {
 public:
  OwnedCopy(const float* src, size_t n);  // throws std::bad_alloc
  ~OwnedCopy();
  OwnedCopy(const OwnedCopy&) = delete;
  OwnedCopy& operator=(const OwnedCopy&) = delete;
  const float* data() const { return p_; }

 private:
  float* p_ = nullptr;
  size_t n_;
  bool pooled_ = false;
};

// An ArrayBuffer of `bytes` for a snapshot: large ones lent from the pool.
Napi::ArrayBuffer snapshot_buffer(Napi::Env env, size_t bytes);

// release(buffer): detaches a snapshot's ArrayBuffer and gives its memory back.
Napi::Value release_buffer(const Napi::CallbackInfo& info);

}  // namespace gv::binding
