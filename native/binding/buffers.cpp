#include "buffers.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>

#include "convert.h"

namespace gv::binding {
namespace {

// ---- snapshot buffers
//
// A large snapshot spends most of its time in page faults on fresh memory,
// not in the copy (measured in bench/: calloc + copy of 40 MB runs at 0.2x
// memcpy). Large buffers therefore go back to a small pool when V8 collects
// the ArrayBuffer or the snapshot is released (Snapshot.release() detaches
// it at once; collection waits for a turn of the event loop), so a steady
// snapshot loop copies into memory that is already mapped. Transparent huge
// pages were tried and dropped: on the reference VM, first-touch of 40 MB
// with MADV_HUGEPAGE took 61-101 ms against 31-43 ms with 4 KiB pages.

class BufferPool {
 public:
  static constexpr size_t kMinBytes = 1 << 20;      // smaller ones: V8's own allocation
  static constexpr size_t kAlign = 64;
  static constexpr size_t kMaxPooled = 512u << 20;  // bytes kept for reuse, at most
  // Bytes lent to JavaScript and not back yet, at most: a synchronous loop
  // that never releases its snapshots gets nothing back until the event loop
  // turns (N-API runs finalizers then), so past this the snapshots use V8's
  // own allocation, which its garbage collector can free inside the loop.
  static constexpr size_t kMaxLent = 256u << 20;

  static BufferPool& instance() {
    static BufferPool* p = new BufferPool();  // never destroyed: finalizers may run at exit
    return *p;
  }

  void* take(size_t bytes) {
    {
      std::lock_guard<std::mutex> lk(m_);
      auto it = free_.find(bytes);
      if (it != free_.end()) {
        void* p = it->second;
        free_.erase(it);
        pooled_ -= bytes;
        return p;
      }
    }
    return std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  }

  void give(void* p, size_t bytes) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (pooled_ + bytes <= kMaxPooled) {
        free_.emplace(bytes, p);
        pooled_ += bytes;
        return;
      }
    }
    std::free(p);
  }

  // A buffer lent to one ArrayBuffer. Its memory comes back to the pool
  // exactly once, by whichever comes first: Snapshot.release() (which
  // detaches the ArrayBuffer) or the ArrayBuffer's finalizer. The finalizer
  // always runs, after release() if there was one, and frees the lease.
  // Both run on the ArrayBuffer's own JS thread; the mutex guards the pool.
  // The finalizer is keyed by its lease, never by the address: after a
  // release the same address may already be lent to a newer snapshot, and a
  // finalizer that looked it up by address would give that one's memory
  // away (two live snapshots sharing bytes: issue 10, item 1).
  struct Lease {
    void* data;
    size_t bytes;
    bool returned = false;
  };
  // Takes a buffer to lend, or returns null when kMaxLent is reached.
  Lease* lend(size_t bytes) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (lentBytes_ + bytes > kMaxLent) return nullptr;
      lentBytes_ += bytes;
    }
    void* p = take(bytes);
    std::lock_guard<std::mutex> lk(m_);
    if (!p) {
      lentBytes_ -= bytes;
      return nullptr;
    }
    Lease* l = new Lease{p, bytes};
    byData_[p] = l;
    return l;
  }
  // The lease of memory that is lent now (null if data is not pooled memory
  // lent to JavaScript: a small snapshot in V8's own memory).
  Lease* lease_of(void* data) {
    std::lock_guard<std::mutex> lk(m_);
    auto it = byData_.find(data);
    return it == byData_.end() ? nullptr : it->second;
  }
  // The one return of a lease's memory; later calls do nothing.
  void give_back(Lease* l) {
    {
      std::lock_guard<std::mutex> lk(m_);
      if (l->returned) return;
      l->returned = true;
      byData_.erase(l->data);
      lentBytes_ -= l->bytes;
    }
    give(l->data, l->bytes);
  }
  // The ArrayBuffer is gone: its memory comes back unless release() gave it already.
  void finalize(Lease* l) {
    give_back(l);
    delete l;
  }

 private:
  std::mutex m_;
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, Lease*> byData_;  // memory lent now -> its lease
  size_t pooled_ = 0, lentBytes_ = 0;
};

}  // namespace

OwnedCopy::OwnedCopy(const float* src, size_t n) : n_(n) {
  const size_t bytes = n * sizeof(float);
  if (bytes >= BufferPool::kMinBytes) {
    p_ = static_cast<float*>(BufferPool::instance().take(bytes));
    if (!p_) throw std::bad_alloc();
    pooled_ = true;
  } else {
    p_ = n ? static_cast<float*>(std::malloc(bytes)) : nullptr;
    if (n && !p_) throw std::bad_alloc();
  }
  if (n) std::memcpy(p_, src, bytes);
}

OwnedCopy::~OwnedCopy() {
  if (pooled_) BufferPool::instance().give(p_, n_ * sizeof(float));
  else std::free(p_);
}

Napi::ArrayBuffer snapshot_buffer(Napi::Env env, size_t bytes) {
  if (bytes < BufferPool::kMinBytes) return Napi::ArrayBuffer::New(env, bytes);
  BufferPool::Lease* l = BufferPool::instance().lend(bytes);
  if (!l) return Napi::ArrayBuffer::New(env, bytes);
  return Napi::ArrayBuffer::New(
      env, l->data, bytes, [](Napi::Env, void*, BufferPool::Lease* lease) { BufferPool::instance().finalize(lease); }, l);
}

// Detaches a snapshot's ArrayBuffer: its memory goes back to the pool now
// instead of at the next collection. Views of it become empty.
Napi::Value release_buffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) throw_arg(env, "release expects an ArrayBuffer");
  Napi::ArrayBuffer b = info[0].As<Napi::ArrayBuffer>();
  if (b.IsDetached()) return env.Undefined();
  BufferPool::Lease* l = BufferPool::instance().lease_of(b.Data());
  // Detached first: no view can reach the memory once it is back in the pool.
  b.Detach();
  if (l) BufferPool::instance().give_back(l);
  return env.Undefined();
}

}  // namespace gv::binding
