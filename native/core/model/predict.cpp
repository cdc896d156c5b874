// predict(): a model's answers for rows of data, on the same kernels as
// training and evaluate(), in blocks of kEvalBlock rows, on several threads
// for large inputs (model.h).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include "batch.h"

namespace gv::model {

using data::Dataset;
using DK = data::Kind;

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string r = "[";
  for (size_t i = 0; i < shape.size(); ++i) r += (i ? ", " : "") + std::to_string(shape[i]);
  return r + "]";
}

Status shape_error(const TensorSpec& t, const std::string& msg) {
  Status s = Status::Error(Code::Shape, msg + "; tensor '" + t.name + "' has shape " + shape_text(t.shape), t.name);
  s.tensorName = t.name;
  return s;
}

// Rows [begin, end) of d: raw outputs, then what each kind reports.
void predict_block(const Model& m, const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float* ws,
                   Prediction* out) {
  const size_t W = out->width, n = static_cast<size_t>(end - begin);
  float* v = out->values.data() + begin * W;
  m.outputs(p, d, begin, end, ws, v);
  switch (m.kind()) {
    case Kind::Softmax:
    case Kind::Mlp:
      for (size_t i = 0; i < n; ++i) {
        float* z = v + i * W;
        size_t best = 0;
        for (size_t c = 1; c < W; ++c)
          if (z[c] > z[best]) best = c;
        const float top = z[best];
        double sum = 0;
        for (size_t c = 0; c < W; ++c) sum += (z[c] = std::exp(z[c] - top));
        const float inv = static_cast<float>(1.0 / sum);
        for (size_t c = 0; c < W; ++c) z[c] *= inv;
        out->classes[begin + i] = static_cast<int32_t>(best);
      }
      break;
    case Kind::Logistic:
    case Kind::Svm:
      for (size_t i = 0; i < n; ++i) {
        out->classes[begin + i] = v[i] > 0 ? 1 : 0;
        out->labels[begin + i] = v[i] > 0 ? 1.f : -1.f;
      }
      if (m.kind() == Kind::Logistic) detail::K().sigmoid(v, v, n);
      break;
    default: break;
  }
}

}  // namespace

Status check_input(const Model& m, const Dataset& d) {
  const std::vector<TensorSpec>& t = m.tensors();
  const Dims& dims = m.dims();
  if (m.kind() == Kind::Mf) {
    if (d.kind != DK::Ratings)
      return Status::Error(Code::InvalidArgument,
                           std::string("model 'mf' predicts (user, item) pairs, got ") + data::kind_name(d.kind) + " rows", "data");
    for (uint64_t r = 0; r < d.rows; ++r) {
      const bool u = d.user[r] >= dims.users;
      if (u || d.item[r] >= dims.items) {
        Status s = shape_error(t[u ? 0 : 1], std::string(u ? "users[" : "items[") + std::to_string(r) + "] is " +
                                                 std::to_string(u ? d.user[r] : d.item[r]) + ", beyond the model's " +
                                                 std::to_string(u ? dims.users : dims.items) + (u ? " users" : " items"));
        s.index = static_cast<int64_t>(r);
        return s;
      }
    }
    return Status::Ok();
  }
  if (d.kind == DK::Ratings)
    return Status::Error(Code::InvalidArgument,
                         std::string("model '") + kind_name(m.kind()) + "' predicts feature rows, got ratings", "data");
  const bool fits = d.kind == DK::Sparse ? d.features <= dims.features : d.features == dims.features;
  if (!fits)
    return shape_error(t[0], "the input has rows of " + std::to_string(d.features) + " features, the model takes " +
                                 std::to_string(dims.features));
  return Status::Ok();
}

Status predict(const Model& m, const float* const* p, const Dataset& d, Prediction* out, unsigned threads) {
  Status s = check_input(m, d);
  if (!s.ok()) return s;
  Prediction r;
  r.rows = d.rows;
  r.width = m.output_width();
  // rows × width must not wrap; out of memory is the caller's input too large
  // (a typed error, as a bad argument: std::length_error would terminate)
  const auto too_large = [&] {
    return Status::Error(Code::InvalidArgument,
                         "out of memory for " + std::to_string(d.rows) + " rows × " + std::to_string(r.width) + " predictions", "data");
  };
  // More values than one JS Float32Array holds (2^32) is refused before allocating: a sanitizer
  // build aborts on an allocation that size instead of throwing bad_alloc.
  constexpr uint64_t kMaxValues = uint64_t{1} << 32;
  if (r.width != 0 && (d.rows > std::numeric_limits<size_t>::max() / sizeof(float) / r.width || d.rows * r.width > kMaxValues))
    return too_large();
  try {
    r.values.resize(d.rows * r.width);
    if (!m.regression()) r.classes.resize(d.rows);
    if (m.kind() == Kind::Logistic || m.kind() == Kind::Svm) r.labels.resize(d.rows);
  } catch (const std::exception&) {
    return too_large();
  }
  // Threads take turns of whole blocks, each thread at least ~1M
  // multiply-adds of the first layer (a row's nonzeros x the first tensor's
  // width): a small input stays on this thread.
  static const unsigned cores = std::max(1u, std::thread::hardware_concurrency());  // read once (a file read)
  const uint64_t blocks = (d.rows + Model::kEvalBlock - 1) / Model::kEvalBlock;
  const std::vector<int64_t>& first = m.tensors()[0].shape;
  const double width = first.size() > 1 ? static_cast<double>(first[1]) : 1.0;
  const double perRow = std::max(1.0, static_cast<double>(d.nnz()) / std::max<uint64_t>(1, d.rows) * width);
  const uint64_t rowsPerThread = std::max<uint64_t>(Model::kEvalBlock, static_cast<uint64_t>(1e6 / perRow));
  if (threads == 0) threads = cores;
  threads = static_cast<unsigned>(std::min<uint64_t>({threads, blocks, std::max<uint64_t>(1, d.rows / rowsPerThread)}));
  // workspace for the largest block this input has (a call of one row needs little)
  const size_t wsFloats = m.workspace_floats(d, static_cast<size_t>(std::min<uint64_t>(d.rows, Model::kEvalBlock))) + 16;
  std::atomic<bool> oom{false};
  auto work = [&](unsigned k) {
    std::vector<float> ws;
    try {
      ws.resize(wsFloats);
    } catch (const std::bad_alloc&) {
      oom = true;
      return;
    }
    for (uint64_t b = k; b < blocks; b += threads) {
      const uint64_t begin = b * Model::kEvalBlock;
      predict_block(m, p, d, begin, std::min<uint64_t>(d.rows, begin + Model::kEvalBlock), ws.data(), &r);
    }
  };
  // A share whose thread cannot start runs here.
  std::vector<std::thread> pool;
  std::vector<unsigned> here{0};
  for (unsigned k = 1; k < threads; ++k) {
    try {
      pool.emplace_back(work, k);
    } catch (const std::exception&) {
      here.push_back(k);
    }
  }
  for (unsigned k : here) work(k);
  for (std::thread& t : pool) t.join();
  if (oom) return Status::Error(Code::Internal, "out of memory for prediction workspace");
  r.threads = threads;
  *out = std::move(r);
  return Status::Ok();
}

Status predict(const ModelSpec& spec, const std::vector<NamedArray>& tensors, const Dataset& d, Prediction* out,
               unsigned threads) {
  std::unique_ptr<Model> m;
  std::vector<const float*> p;
  Status s = from_tensors(spec, tensors, &m, &p);
  return s.ok() ? predict(*m, p.data(), d, out, threads) : s;
}

}  // namespace gv::model
