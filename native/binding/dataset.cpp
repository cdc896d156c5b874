// Datasets: parsed off the JS thread, held in C++ memory behind a shared_ptr
// that a native trainer can share without copying. JS reads copies (rows,
// labels), never views into the dataset.
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

#include "binding.h"
#include "convert.h"
#include "worker.h"

namespace gv::binding {
namespace {

constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;  // Number.MAX_SAFE_INTEGER

class NativeDataset : public Napi::ObjectWrap<NativeDataset> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "NativeDataset",
                       {
                           InstanceMethod<&NativeDataset::Info>("info"),
                           InstanceMethod<&NativeDataset::Labels>("labels"),
                           InstanceMethod<&NativeDataset::ClassIds>("classIds"),
                           InstanceMethod<&NativeDataset::Row>("row"),
                           InstanceMethod<&NativeDataset::Slice>("slice"),
                           InstanceMethod<&NativeDataset::Shuffle>("shuffle"),
                           InstanceMethod<&NativeDataset::Scaler>("scaler"),
                           InstanceMethod<&NativeDataset::Standardize>("standardize"),
                       });
  }

  // Only wrap_dataset constructs one, passing the dataset in an External.
  explicit NativeDataset(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeDataset>(info) {
    if (info.Length() < 1 || !info[0].IsExternal()) throw_arg(info.Env(), "NativeDataset is created by the loaders");
    data_ = *info[0].As<Napi::External<DatasetPtr>>().Data();
    if (!data_) throw_arg(info.Env(), "NativeDataset is created by the loaders");
  }

  const DatasetPtr& data() const { return data_; }

 private:
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& d = *data_;
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", gv::data::kind_name(d.kind));
    o.Set("rows", Napi::Number::New(env, static_cast<double>(d.rows)));
    o.Set("features", Napi::Number::New(env, static_cast<double>(d.features)));
    o.Set("classes", Napi::Number::New(env, static_cast<double>(d.classes)));
    o.Set("nnz", Napi::Number::New(env, static_cast<double>(d.nnz())));
    o.Set("users", Napi::Number::New(env, static_cast<double>(d.users)));
    o.Set("items", Napi::Number::New(env, static_cast<double>(d.items)));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(d.bytes())));
    return o;
  }

  Napi::Value Labels(const Napi::CallbackInfo& info) {
    const auto& v = data_->labels;
    Napi::Float32Array a = Napi::Float32Array::New(info.Env(), v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
    return a;
  }

  Napi::Value ClassIds(const Napi::CallbackInfo& info) {
    const auto& v = data_->classIds;
    if (v.empty() && data_->classes == 0) return info.Env().Null();
    Napi::Int32Array a = Napi::Int32Array::New(info.Env(), v.size());
    if (!v.empty()) std::memcpy(a.Data(), v.data(), v.size() * sizeof(int32_t));
    return a;
  }

  uint64_t row_arg(const Napi::CallbackInfo& info, uint32_t k, uint64_t max, const char* name) {
    if (info.Length() <= k || !info[k].IsNumber()) throw_arg(info.Env(), std::string(name) + " must be a number");
    double x = info[k].As<Napi::Number>().DoubleValue();
    if (!(x >= 0) || x > static_cast<double>(max) || x != std::floor(x))
      throw_arg(info.Env(), std::string(name) + " must be an integer in 0.." + std::to_string(max));
    return static_cast<uint64_t>(x);
  }

  Napi::Value Row(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto& d = *data_;
    if (d.rows == 0) throw_arg(env, "the dataset has no rows");
    uint64_t r = row_arg(info, 0, d.rows - 1, "row");
    if (d.kind == gv::data::Kind::Dense) {
      Napi::Float32Array a = Napi::Float32Array::New(env, d.features);
      if (d.features) std::memcpy(a.Data(), d.X.data() + r * d.features, d.features * sizeof(float));
      return a;
    }
    Napi::Object o = Napi::Object::New(env);
    if (d.kind == gv::data::Kind::Sparse) {
      uint64_t a = d.indptr[r], n = d.indptr[r + 1] - a;
      Napi::Uint32Array idx = Napi::Uint32Array::New(env, n);
      Napi::Float32Array val = Napi::Float32Array::New(env, n);
      if (n) {
        std::memcpy(idx.Data(), d.indices.data() + a, n * sizeof(uint32_t));
        std::memcpy(val.Data(), d.values.data() + a, n * sizeof(float));
      }
      o.Set("indices", idx);
      o.Set("values", val);
    } else {
      o.Set("user", Napi::Number::New(env, d.user[r]));
      o.Set("item", Napi::Number::New(env, d.item[r]));
      o.Set("rating", Napi::Number::New(env, d.labels[r]));
    }
    return o;
  }

  Napi::Value Slice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t start = row_arg(info, 0, data_->rows, "start");
    uint64_t end = row_arg(info, 1, data_->rows, "end");
    auto out = std::make_shared<gv::data::Dataset>();
    Status s = gv::data::slice(*data_, start, end, out.get());
    if (!s.ok()) throw status_error(env, s, nullptr);
    return wrap_dataset(env, std::move(out));
  }

  Napi::Value Shuffle(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t seed = row_arg(info, 0, kMaxSafeInteger, "seed");
    auto out = std::make_shared<gv::data::Dataset>();
    Status s = gv::data::shuffle(*data_, seed, out.get());
    if (!s.ok()) throw status_error(env, s, nullptr);
    return wrap_dataset(env, std::move(out));
  }

  // scaler() -> { mean, scale } (Float64Arrays) | null: the scaler its values were standardized with.
  Napi::Value Scaler(const Napi::CallbackInfo& info) {
    return data_->scaler ? Napi::Value(scaler_js(info.Env(), *data_->scaler)) : info.Env().Null();
  }

  // standardize(mean: Float64Array | null, scale: Float64Array | null) -> NativeDataset:
  // a standardized copy, with a scaler fitted on these rows (null, null) or the one given.
  Napi::Value Standardize(const Napi::CallbackInfo& info);

  DatasetPtr data_;
};

// A typed array argument of the given type (the facade converts): its data
// and length; or null data when the argument is null and optional.
template <class T>
const T* typed_arg(const Napi::CallbackInfo& info, uint32_t k, napi_typedarray_type type, const char* name, uint64_t* size,
                   bool optional = false) {
  if (optional && (info.Length() <= k || info[k].IsNull() || info[k].IsUndefined())) {
    *size = 0;
    return nullptr;
  }
  if (info.Length() <= k || !info[k].IsTypedArray() || info[k].As<Napi::TypedArray>().TypedArrayType() != type)
    throw_arg(info.Env(), std::string(name) + " must be a " + (type == napi_float32_array ? "Float32Array" : "Float64Array"));
  Napi::TypedArrayOf<T> a = info[k].As<Napi::TypedArrayOf<T>>();
  if (reinterpret_cast<uintptr_t>(a.Data()) % alignof(T) != 0) throw_arg(info.Env(), std::string(name) + " is misaligned");
  *size = a.ElementLength();
  return a.Data();
}

Napi::Value NativeDataset::Standardize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t nm = 0, ns = 0;
  const double* mean = typed_arg<double>(info, 0, napi_float64_array, "mean", &nm, true);
  const double* scale = typed_arg<double>(info, 1, napi_float64_array, "scale", &ns, true);
  gv::data::Scaler sc;
  Status s;
  if (!mean && !scale) {
    s = gv::data::fit_scaler(*data_, &sc);
  } else {
    if (!mean || !scale) throw_arg(env, "standardize takes both mean and scale, or neither");
    sc.mean.assign(mean, mean + nm);
    sc.scale.assign(scale, scale + ns);
  }
  auto out = std::make_shared<gv::data::Dataset>();
  if (s.ok()) s = gv::data::standardize(*data_, sc, out.get());
  if (!s.ok()) throw status_error(env, s, nullptr);
  return wrap_dataset(env, std::move(out));
}

uint64_t count_arg(const Napi::CallbackInfo& info, uint32_t k, const char* name) {
  if (info.Length() <= k || !info[k].IsNumber()) throw_arg(info.Env(), std::string(name) + " must be a number");
  double x = info[k].As<Napi::Number>().DoubleValue();
  if (!(x >= 0) || x > static_cast<double>(kMaxSafeInteger) || x != std::floor(x))
    throw_arg(info.Env(), std::string(name) + " must be a non-negative integer");
  return static_cast<uint64_t>(x);
}

Napi::Value made(Napi::Env env, const Status& s, std::shared_ptr<gv::data::Dataset> d) {
  if (!s.ok()) throw status_error(env, s, nullptr);
  return wrap_dataset(env, std::move(d));
}

// Runs a loader on the libuv pool; the promise settles with a NativeDataset.
template <class Load>
Napi::Value start(Napi::Env env, Load load) {
  auto job = [load = std::move(load)](DatasetPtr* out) {
    auto d = std::make_shared<gv::data::Dataset>();
    Status s = load(d.get());
    if (s.ok()) *out = std::move(d);
    return s;
  };
  return queue_promise<DatasetPtr>(env, std::move(job), [](Napi::Env e, DatasetPtr& d) { return wrap_dataset(e, std::move(d)); });
}

}  // namespace

Napi::Function define_dataset(Napi::Env env) { return NativeDataset::Define(env); }

DatasetPtr dataset_arg(const Napi::CallbackInfo& info, uint32_t k) {
  if (info.Length() <= k || !is_instance(info.Env(), info[k], false)) throw_arg(info.Env(), "data must be a Dataset");
  return Napi::ObjectWrap<NativeDataset>::Unwrap(info[k].As<Napi::Object>())->data();
}

// loadIdx(images, labels, scale) -> Promise<NativeDataset>
Napi::Value load_idx(const Napi::CallbackInfo& info) {
  std::string images = string_arg(info, 0, "images"), labels = string_arg(info, 1, "labels");
  if (info.Length() < 3 || !info[2].IsBoolean()) throw_arg(info.Env(), "scale must be a boolean");
  bool scale = info[2].As<Napi::Boolean>().Value();
  return start(info.Env(), [=](gv::data::Dataset* d) { return gv::data::load_idx(images, labels, scale, d); });
}

// loadLibsvm(file, { indexBase: -1|0|1, features }) -> Promise<NativeDataset>
Napi::Value load_libsvm(const Napi::CallbackInfo& info) {
  std::string file = string_arg(info, 0, "file");
  Napi::Object o = object_arg(info, 1, "options");
  gv::data::LibsvmOptions opt;
  opt.indexBase = static_cast<int>(integer(o, "indexBase", INT_MIN, INT_MAX));
  opt.features = static_cast<uint64_t>(integer(o, "features", 0, kMaxSafeInteger));
  return start(info.Env(), [=](gv::data::Dataset* d) { return gv::data::load_libsvm(file, opt, d); });
}

// loadCsv(file, { labelIndex, labelName, header: -1|0|1, delimiter }) -> Promise<NativeDataset>
Napi::Value load_csv(const Napi::CallbackInfo& info) {
  std::string file = string_arg(info, 0, "file");
  Napi::Object o = object_arg(info, 1, "options");
  gv::data::CsvOptions opt;
  opt.labelIndex = integer(o, "labelIndex", -1, kMaxSafeInteger);
  opt.labelName = str(o, "labelName");
  opt.header = static_cast<int>(integer(o, "header", INT_MIN, INT_MAX));
  std::string delim = str(o, "delimiter");
  if (delim.size() != 1) throw_arg(info.Env(), "delimiter must be one character");
  opt.delimiter = delim[0];
  return start(info.Env(), [=](gv::data::Dataset* d) { return gv::data::load_csv(file, opt, d); });
}

// synthetic(kind, options) -> NativeDataset, synchronously.
Napi::Value synthetic_dataset(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string kind = string_arg(info, 0, "kind");
  Napi::Object o = object_arg(info, 1, "options");
  gv::data::SyntheticOptions opt;
  // rows and seed always; the rest are the kind's own (lib/data.ts sends
  // exactly those): a field another kind reads is absent and unread.
  auto u64 = [&](const char* key, uint64_t* out) { *out = static_cast<uint64_t>(integer(o, key, 0, kMaxSafeInteger)); };
  u64("rows", &opt.rows);
  u64("seed", &opt.seed);
  for (auto [key, out] : {std::pair{"features", &opt.features}, {"classes", &opt.classes}, {"users", &opt.users},
                          {"items", &opt.items}, {"rank", &opt.rank}})
    if (o.Has(key)) u64(key, out);
  for (auto [key, out] : {std::pair{"nnz", &opt.nnz}, {"zipf", &opt.zipf}, {"noise", &opt.noise}, {"spread", &opt.spread}})
    if (o.Has(key)) *out = num(o, key);
  auto d = std::make_shared<gv::data::Dataset>();
  Status s = gv::data::synthetic(kind, opt, d.get());
  if (!s.ok()) throw status_error(env, s, nullptr);
  return wrap_dataset(env, std::move(d));
}

// fromDense(x: Float32Array, features, labels: Float32Array | null) -> NativeDataset (a copy)
Napi::Value dataset_from_dense(const Napi::CallbackInfo& info) {
  uint64_t n = 0;
  const float* x = typed_arg<float>(info, 0, napi_float32_array, "x", &n);
  const uint64_t features = count_arg(info, 1, "features");
  gv::data::Column labels;
  labels.data = typed_arg<float>(info, 2, napi_float32_array, "labels", &labels.size, true);
  auto d = std::make_shared<gv::data::Dataset>();
  return made(info.Env(), gv::data::from_dense(x, n, features, labels, d.get()), d);
}

// fromSparse(indptr: Float64Array, indices: Float64Array, values: Float32Array, features, labels | null)
Napi::Value dataset_from_sparse(const Napi::CallbackInfo& info) {
  gv::data::SparseInput in;
  in.indptr = typed_arg<double>(info, 0, napi_float64_array, "indptr", &in.indptrSize);
  in.indices = typed_arg<double>(info, 1, napi_float64_array, "indices", &in.indicesSize);
  in.values = typed_arg<float>(info, 2, napi_float32_array, "values", &in.valuesSize);
  in.features = count_arg(info, 3, "features");
  gv::data::Column labels;
  labels.data = typed_arg<float>(info, 4, napi_float32_array, "labels", &labels.size, true);
  auto d = std::make_shared<gv::data::Dataset>();
  return made(info.Env(), gv::data::from_sparse(in, labels, d.get()), d);
}

// fromRatings(users: Float64Array, items: Float64Array, ratings: Float32Array | null, userCount, itemCount)
Napi::Value dataset_from_ratings(const Napi::CallbackInfo& info) {
  gv::data::RatingsInput in;
  uint64_t nu = 0, ni = 0, nr = 0;
  in.user = typed_arg<double>(info, 0, napi_float64_array, "users", &nu);
  in.item = typed_arg<double>(info, 1, napi_float64_array, "items", &ni);
  in.ratings = typed_arg<float>(info, 2, napi_float32_array, "ratings", &nr, true);
  in.users = count_arg(info, 3, "userCount");
  in.items = count_arg(info, 4, "itemCount");
  if (ni != nu) throw status_error(info.Env(), Status::Error(Code::InvalidArgument, "items has " + std::to_string(ni) + " ids, users " + std::to_string(nu), "items"), nullptr);
  if (in.ratings && nr != nu) throw status_error(info.Env(), Status::Error(Code::InvalidArgument, "ratings has " + std::to_string(nr) + " values, users " + std::to_string(nu), "ratings"), nullptr);
  in.size = nu;
  auto d = std::make_shared<gv::data::Dataset>();
  return made(info.Env(), gv::data::from_ratings(in, d.get()), d);
}

}  // namespace gv::binding
