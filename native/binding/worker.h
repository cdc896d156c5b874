// The one way the binding runs core work off the JS thread: a job returning a
// Status runs on the libuv pool; its promise settles on the JS thread,
// resolved with what the converter builds from the job's result, or rejected
// with the Status as a typed error. The job owns whatever it reads (a store,
// copied gradients), so close() or GC meanwhile is safe.
#pragma once
#include <napi.h>

#include <memory>
#include <utility>

#include "convert.h"

namespace gv::binding {

template <class Result, class Job, class Convert>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, Job job, Convert convert, std::shared_ptr<const Store> store)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), job_(std::move(job)),
        convert_(std::move(convert)), store_(std::move(store)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = job_(&result_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (!status_.ok()) {
      deferred_.Reject(status_error(env, status_, store_.get()).Value());
      return;
    }
    try {
      deferred_.Resolve(convert_(env, result_));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  Convert convert_;
  std::shared_ptr<const Store> store_;  // names the tensor of an error; may be null
  Status status_;
  Result result_;
};

// job: Status(Result*) on the pool; convert: Napi::Value(Napi::Env, Result&)
// on the JS thread. store, when given, names the tensor a failing Status points at.
template <class Result, class Job, class Convert>
Napi::Promise queue_promise(Napi::Env env, Job job, Convert convert, std::shared_ptr<const Store> store = nullptr) {
  auto* w = new PromiseWorker<Result, Job, Convert>(env, std::move(job), std::move(convert), std::move(store));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace gv::binding
