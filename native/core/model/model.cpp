// The six built-in models on the kernel table (see model.h). Gradients are
// means over the batch, so a learning rate means the same at any batch size.
#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <iterator>

#include "batch.h"
#include "families.h"

namespace gv::model {

using data::Dataset;
using DK = data::Kind;

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Linear: return "linear";
    case Kind::Logistic: return "logistic";
    case Kind::Softmax: return "softmax";
    case Kind::Svm: return "svm";
    case Kind::Mlp: return "mlp";
    case Kind::Mf: return "mf";
  }
  return "?";
}

bool parse_kind(const std::string& s, Kind* out) {
  static const char* names[] = {"linear", "logistic", "softmax", "svm", "mlp", "mf"};
  for (int i = 0; i < 6; ++i)
    if (s == names[i]) {
      *out = static_cast<Kind>(i);
      return true;
    }
  return false;
}

Status parse_model_kind(const std::string& s, Kind* out) {
  static const char* const names[] = {kind_name(Kind::Linear), kind_name(Kind::Logistic), kind_name(Kind::Softmax),
                                      kind_name(Kind::Svm),    kind_name(Kind::Mlp),      kind_name(Kind::Mf)};
  return parse_named(s, names, "model", out);
}

ModelInfo info_of(const ModelSpec& spec, const Dims& d) {
  ModelInfo i;
  i.kind = kind_name(spec.kind);
  switch (spec.kind) {
    case Kind::Linear:
    case Kind::Logistic:
    case Kind::Svm:
      i.features = d.features;
      break;
    case Kind::Mlp:
      i.hidden = spec.hidden;
      [[fallthrough]];
    case Kind::Softmax:
      i.features = d.features;
      i.classes = d.classes;
      break;
    case Kind::Mf:
      i.rank = spec.rank;
      i.biases = spec.biases;
      i.l2 = spec.l2;
      i.users = d.users;
      i.items = d.items;
      break;
  }
  return i;
}

ModelInfo info_of(const Model& m) { return info_of(m.spec(), m.dims()); }

Status spec_of(const ModelInfo& info, ModelSpec* spec, Dims* dims) {
  ModelSpec s;
  if (Status st = parse_model_kind(info.kind, &s.kind); !st.ok()) return st;
  if (s.kind == Kind::Mlp) s.hidden = info.hidden;
  if (s.kind == Kind::Mf) {
    s.rank = info.rank;
    s.biases = info.biases;
    s.l2 = info.l2;
  }
  *spec = s;
  *dims = Dims{info.features, info.classes, info.users, info.items};
  return Status::Ok();
}

namespace {
Status config_error(const std::string& msg, const std::string& field) { return Status::Error(Code::Config, msg, field); }
}  // namespace

void Model::rows_needed(const Dataset&, const uint32_t*, size_t, bool, Touched* need) const {
  for (size_t t = 0; t < tensors_.size(); ++t) {
    need[t].dense = true;
    need[t].rows.clear();
  }
}

Dims Model::dims_of(const Dataset& d) {
  Dims m;
  m.features = d.kind == DK::Ratings ? 0 : d.features;
  m.classes = d.classes;
  m.users = d.users;
  m.items = d.items;
  return m;
}

Status Model::create(const ModelSpec& spec, const Dims& dims, std::unique_ptr<Model>* out) {
  const char* name = kind_name(spec.kind);
  if (spec.kind == Kind::Mf) {
    if (dims.users == 0 || dims.items == 0)
      return Status::Error(Code::InvalidArgument, "model 'mf' needs ratings data (users and items), got none", "data");
    if (spec.rank == 0 || spec.rank > 4096) return config_error(std::string("rank must be in 1..4096, got ") + std::to_string(spec.rank), "rank");
    *out = detail::make_mf(spec, dims);
    return Status::Ok();
  }
  if (dims.features == 0)
    return Status::Error(Code::InvalidArgument, std::string("model '") + name + "' needs dense or sparse feature rows, got none", "data");
  if (dims.features > UINT32_MAX) return config_error("too many features", "features");
  switch (spec.kind) {
    case Kind::Linear:
    case Kind::Logistic:
    case Kind::Svm:
      *out = detail::make_linear(spec, dims);
      return Status::Ok();
    case Kind::Softmax:
    case Kind::Mlp:
      if (dims.classes < 2)
        return Status::Error(Code::InvalidArgument,
                             std::string("model '") + name + "' needs class labels (2 or more classes), got " +
                                 std::to_string(dims.classes),
                             "data");
      if (spec.kind == Kind::Mlp) {
        if (spec.hidden.empty()) return config_error("hidden must list at least one layer width", "hidden");
        for (size_t i = 0; i < spec.hidden.size(); ++i)
          if (spec.hidden[i] == 0 || spec.hidden[i] > 65536)
            return config_error(std::string("hidden[") + std::to_string(i) + "] must be in 1..65536, got " +
                                    std::to_string(spec.hidden[i]),
                                std::string("hidden[") + std::to_string(i) + "]");
        *out = detail::make_mlp(spec, dims);
      } else {
        *out = detail::make_softmax(spec, dims);
      }
      return Status::Ok();
    default:
      return config_error("unknown model", "model");
  }
}

Status Model::check_data(const Dataset& d) const {
  const std::string name = kind_name(spec_.kind);
  auto bad = [&](const std::string& msg) { return Status::Error(Code::InvalidArgument, "model '" + name + "': " + msg, "data"); };
  if (spec_.kind == Kind::Mf) {
    if (d.kind != DK::Ratings) return bad(std::string("needs ratings data, got ") + data::kind_name(d.kind));
    if (d.users > dims_.users || d.items > dims_.items)
      return bad(std::string("the data has ") + std::to_string(d.users) + std::string(" users and ") + std::to_string(d.items) +
                 std::string(" items, the model ") + std::to_string(dims_.users) + std::string(" and ") + std::to_string(dims_.items));
    return Status::Ok();
  }
  if (d.kind == DK::Ratings) return bad("needs dense or sparse feature rows, got ratings");
  if (d.features != dims_.features)
    return bad(std::string("the data has ") + std::to_string(d.features) + std::string(" features, the model ") + std::to_string(dims_.features));
  switch (spec_.kind) {
    case Kind::Logistic:
    case Kind::Svm:
      if (d.classes != 2) return bad(std::string("needs binary labels (±1), got ") + std::to_string(d.classes) + " classes");
      break;
    case Kind::Softmax:
    case Kind::Mlp:
      if (d.classes < 2) return bad("needs class labels, got none");
      if (d.classes > dims_.classes)
        return bad(std::string("the data has ") + std::to_string(d.classes) + std::string(" classes, the model ") + std::to_string(dims_.classes));
      break;
    default: break;
  }
  return Status::Ok();
}

Status Model::from_shapes(const ModelSpec& spec0, const std::vector<std::string>& names,
                          const std::vector<std::vector<int64_t>>& shapes, std::unique_ptr<Model>* out,
                          std::vector<int>* order) {
  ModelSpec spec = spec0;
  auto find = [&](const std::string& n) -> int {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == n) return static_cast<int>(i);
    return -1;
  };
  auto need = [&](const std::string& n, size_t rank, int* at) -> Status {
    *at = find(n);
    if (*at < 0) return Status::Error(Code::Shape, std::string("model '") + kind_name(spec.kind) + "' needs a tensor '" + n + "'", n);
    if (shapes[*at].size() != rank)
      return Status::Error(Code::Shape, "tensor '" + n + std::string("' must have ") + std::to_string(rank) + " dimensions", n);
    return Status::Ok();
  };
  Dims d;
  int i0, i1;
  Status s;
  switch (spec.kind) {
    case Kind::Linear:
    case Kind::Logistic:
    case Kind::Svm:
      if (!(s = need("w", 1, &i0)).ok() || !(s = need("b", 1, &i1)).ok()) return s;
      d.features = shapes[i0][0];
      break;
    case Kind::Softmax:
      if (!(s = need("W", 2, &i0)).ok() || !(s = need("b", 1, &i1)).ok()) return s;
      d.features = shapes[i0][0];
      d.classes = shapes[i0][1];
      break;
    case Kind::Mlp: {
      spec.hidden.clear();
      size_t L = 0;
      while (find(std::string("W") + std::to_string(L + 1)) >= 0) ++L;
      if (L < 2) return Status::Error(Code::Shape, "model 'mlp' needs tensors W1, b1, ..., Wn, bn with n >= 2", "W2");
      for (size_t l = 1; l <= L; ++l) {
        int w, b;
        if (!(s = need(std::string("W") + std::to_string(l), 2, &w)).ok() || !(s = need(std::string("b") + std::to_string(l), 1, &b)).ok()) return s;
        if (l == 1) d.features = shapes[w][0];
        if (l < L) spec.hidden.push_back(static_cast<uint32_t>(shapes[w][1]));
        else d.classes = shapes[w][1];
      }
      break;
    }
    case Kind::Mf:
      if (!(s = need("U", 2, &i0)).ok() || !(s = need("V", 2, &i1)).ok()) return s;
      d.users = shapes[i0][0];
      d.items = shapes[i1][0];
      spec.rank = static_cast<uint32_t>(shapes[i0][1]);
      // both biases or neither: one alone would be silently ignored
      spec.biases = find("bu") >= 0;
      if (spec.biases != (find("bi") >= 0)) {
        const std::string has = spec.biases ? "bu" : "bi", lacks = spec.biases ? "bi" : "bu";
        Status e = Status::Error(Code::Shape, "model 'mf' takes both biases bu [users] and bi [items] or neither; the parameters have '" +
                                                  has + "' but no '" + lacks + "'", lacks);
        e.tensorName = lacks;
        return e;
      }
      break;
  }
  if (!(s = create(spec, d, out)).ok()) return s;
  order->clear();
  for (const TensorSpec& t : (*out)->tensors()) {
    int at = find(t.name);
    if (at < 0) return Status::Error(Code::Shape, "model needs a tensor '" + t.name + "'", t.name);
    if (shapes[at] != t.shape) {
      std::string want, got;
      for (int64_t x : t.shape) want += (want.empty() ? "" : ", ") + std::to_string(x);
      for (int64_t x : shapes[at]) got += (got.empty() ? "" : ", ") + std::to_string(x);
      return Status::Error(Code::Shape, "tensor '" + t.name + "' must have shape [" + want + "], got [" + got + "]", t.name);
    }
    order->push_back(at);
  }
  return Status::Ok();
}

Status evaluate(const Model& m, const float* const* p, const Dataset& d, EvalSums* out) {
  Status s = m.check_data(d);
  if (!s.ok()) return s;
  std::vector<float> ws(m.workspace_floats(d, Model::kEvalBlock) + 16);
  for (uint64_t r = 0; r < d.rows; r += Model::kEvalBlock)
    m.eval(p, d, r, std::min<uint64_t>(d.rows, r + Model::kEvalBlock), ws.data(), out);
  return Status::Ok();
}

Status evaluate(const Model& m, const float* const* p, const Dataset& d, Evaluation* out) {
  EvalSums sums;
  Status s = evaluate(m, p, d, &sums);
  if (!s.ok()) return s;
  const double rows = static_cast<double>(sums.rows);
  out->rows = sums.rows;
  out->regression = m.regression();
  out->loss = rows ? sums.loss / rows : NAN;
  out->rmse = out->regression && rows ? std::sqrt(sums.sqErr / rows) : NAN;
  out->accuracy = !out->regression && rows ? static_cast<double>(sums.correct) / rows : NAN;
  return Status::Ok();
}

Status from_tensors(const ModelSpec& spec, const std::vector<NamedArray>& tensors, std::unique_ptr<Model>* out,
                    std::vector<const float*>* p) {
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const NamedArray& t : tensors) {
    uint64_t size = 1;
    for (int64_t n : t.shape) size *= static_cast<uint64_t>(n);
    if (t.size != size)
      return Status::Error(Code::Shape, "tensor '" + t.name + "' has " + std::to_string(t.size) + " values, its shape says " + std::to_string(size));
    names.push_back(t.name);
    shapes.push_back(t.shape);
  }
  std::vector<int> order;
  Status s = Model::from_shapes(spec, names, shapes, out, &order);
  if (!s.ok()) return s;
  p->clear();
  for (int k : order) p->push_back(tensors[static_cast<size_t>(k)].data);
  return Status::Ok();
}

Status evaluate(const ModelSpec& spec, const std::vector<NamedArray>& tensors, const Dataset& d, Evaluation* out) {
  std::unique_ptr<Model> m;
  std::vector<const float*> p;
  Status s = from_tensors(spec, tensors, &m, &p);
  return s.ok() ? evaluate(*m, p.data(), d, out) : s;
}

}  // namespace gv::model
