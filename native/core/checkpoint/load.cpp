// load() and inspect() (checkpoint.h): a file, checked as data, becomes a
// new store with the caller's options over the file's.
#include <cmath>
#include <cstring>
#include <limits>

#include "../../kernels/fixed/scalar.h"
#include "../model/model.h"
#include "checkpoint.h"
#include "metadata.h"

namespace gv::ckpt {
namespace {

bool starts(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// A fault of one tensor of the file: its name, and the byte offset of the
// element at fault (or of its data).
Status tensor_error(const std::string& file, const st::Header& h, const st::Tensor& t, const std::string& msg, uint64_t at = 0) {
  Status s = Status::Error(Code::DataFormat, file + ": " + escape_bytes(msg));
  s.file = file;
  s.tensorName = t.name;
  s.offset = static_cast<int64_t>(h.dataStart + t.begin + at);
  return s;
}

Status file_error(const std::string& file, const std::string& msg) {
  Status s = Status::Error(Code::DataFormat, file + ": " + msg);
  s.file = file;
  s.offset = 8;
  return s;
}

// The file's tensors by role: parameters (in order), and the tensors that
// belong to one (state, exact values, round sums), read and checked.
struct FileTensors {
  std::vector<TensorSpec> params;
  std::vector<std::pair<std::string, std::vector<float>>> state;  // "optimizer.<slot>.<param>"
  std::vector<std::pair<std::string, std::vector<int64_t>>> fixed, round;  // by parameter name
  const std::vector<float>* find_state(const std::string& name) const {
    for (const auto& [n, v] : state)
      if (n == name) return &v;
    return nullptr;
  }
};

// Optimizer state slots whose values the math takes the square root of: a
// negative one would make the first step NaN (a file could poison the store
// this way).
bool non_negative_slot(const std::string& slot) { return slot == "sum" || slot == "square_avg" || slot == "exp_avg_sq"; }
bool known_slot(const std::string& slot) {
  return slot == "momentum_buffer" || slot == "sum" || slot == "square_avg" || slot == "exp_avg" || slot == "exp_avg_sq";
}

Status read_tensors(const std::string& file, const st::Header& h, const std::vector<uint8_t>& data, const FileMetadata& meta,
                    FileTensors* out) {
  std::vector<std::string> names = meta.tensors;
  if (!meta.ours)
    for (const st::Tensor& t : h.tensors)
      if (!starts(t.name, "optimizer.") && !starts(t.name, "fixed.") && !starts(t.name, "round.")) names.push_back(t.name);
  if (names.empty()) return file_error(file, "holds no tensors");
  // A NaN or infinity (a flipped exponent bit, say) would poison every later
  // step: refused here, as the store refuses a non-finite gradient.
  auto floats = [&](const st::Tensor& t, std::vector<float>* v, bool nonNegative) {
    v->resize(static_cast<size_t>(elements(t)));
    if (!v->empty()) read_floats(t, data.data(), v->data());
    const uint64_t width = st::dtype_size(t.dtype);
    for (size_t i = 0; i < v->size(); ++i) {
      const float x = (*v)[i];
      const std::string where = " at index " + std::to_string(i) + " (byte offset " + std::to_string(h.dataStart + t.begin + i * width) + ")";
      if (!std::isfinite(x)) return tensor_error(file, h, t, "tensor '" + t.name + "' holds a non-finite value (" + float_text(x) + ")" + where, i * width);
      if (nonNegative && x < 0)
        return tensor_error(file, h, t, "tensor '" + t.name + "' holds a negative value (" + float_text(x) + ")" + where + ": this optimizer state is a sum of squares", i * width);
    }
    return Status::Ok();
  };
  for (const std::string& n : names) {
    const st::Tensor* t = h.find(n);
    if (!t) return file_error(file, "metadata names tensor '" + escape_bytes(n) + "', which the file does not hold");
    if (!is_float(*t)) return tensor_error(file, h, *t, "tensor '" + n + "' has dtype " + t->dtype + ": parameters must be F32 (or F64, converted)");
    TensorSpec sp(n, t->shape, InitKind::Values);
    if (Status s = floats(*t, &sp.values, false); !s.ok()) return s;
    out->params.push_back(std::move(sp));
  }
  // A tensor that belongs to a parameter of another size is the file's
  // fault; one whose parameter does not exist is another writer's naming, ignored.
  auto owner = [&](const st::Tensor& t, const std::string& param, bool* ours) {
    *ours = false;
    for (const TensorSpec& p : out->params) {
      if (p.name != param) continue;
      if (elements(t) != p.values.size())
        return tensor_error(file, h, t, "tensor '" + t.name + "' has " + std::to_string(elements(t)) + " values, but '" + param + "' has " +
                                            std::to_string(p.values.size()));
      *ours = true;
    }
    return Status::Ok();
  };
  for (const st::Tensor& t : h.tensors) {
    bool ours = false;
    if (starts(t.name, "optimizer.") && is_float(t)) {
      const size_t dot = t.name.find('.', 10);
      const std::string slot = dot == std::string::npos ? "" : t.name.substr(10, dot - 10);
      if (!known_slot(slot)) continue;
      if (Status s = owner(t, t.name.substr(dot + 1), &ours); !s.ok() || !ours) {
        if (!s.ok()) return s;
        continue;
      }
      std::vector<float> v;
      if (Status s = floats(t, &v, non_negative_slot(slot)); !s.ok()) return s;
      out->state.emplace_back(t.name, std::move(v));
      continue;
    }
    const bool fixed = starts(t.name, "fixed."), round = starts(t.name, "round.");
    if ((!fixed && !round) || t.dtype != "I64") continue;
    const std::string param = t.name.substr(6);  // after "fixed." or "round."
    if (Status s = owner(t, param, &ours); !s.ok() || !ours) {
      if (!s.ok()) return s;
      continue;
    }
    std::vector<int64_t> v(static_cast<size_t>(elements(t)));
    if (!v.empty()) std::memcpy(v.data(), data.data() + t.begin, v.size() * sizeof(int64_t));
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] > kernels::kFixedLimit || v[i] < -kernels::kFixedLimit)
        return tensor_error(file, h, t,
                            "tensor '" + t.name + "' holds a fixed-point value (" + std::to_string(v[i]) + ") outside the range ±2^62 at index " +
                                std::to_string(i) + " (byte offset " + std::to_string(h.dataStart + t.begin + i * 8) + ")",
                            i * 8);
    (fixed ? out->fixed : out->round).emplace_back(param, std::move(v));
  }
  return Status::Ok();
}

// The file's model (metadata "model") must be its tensors' model: each
// tensor the model has, of its shape. A file that says otherwise is at fault.
Status check_model(const std::string& file, const ModelInfo& info, const FileTensors& ft) {
  const std::string what = "metadata \"model\" (" + model_text(info) + ")";
  model::ModelSpec spec;
  model::Dims dims;
  std::unique_ptr<model::Model> m;
  Status s = model::spec_of(info, &spec, &dims);
  if (s.ok()) s = model::Model::create(spec, dims, &m);
  if (!s.ok()) return file_error(file, what + " is not a model: " + s.message);
  auto text = [](const std::vector<int64_t>& v) {
    std::string r;
    for (int64_t x : v) r += (r.empty() ? "" : ", ") + std::to_string(x);
    return "[" + r + "]";
  };
  for (const TensorSpec& t : m->tensors()) {
    const TensorSpec* p = nullptr;
    for (const TensorSpec& q : ft.params)
      if (q.name == t.name) p = &q;
    if (!p) return file_error(file, what + " has a tensor '" + t.name + "', which the file does not hold");
    if (p->shape != t.shape)
      return file_error(file, what + " has tensor '" + t.name + "' of shape " + text(t.shape) + ", the file's is " + text(p->shape));
  }
  return Status::Ok();
}

// The store's configuration: the caller's options, then the file's, then
// the defaults. Settings of another mode than the store gets stay behind
// (averaging's syncEvery, a staleness policy in averaging). fromFile: the
// fields the file supplied, by their configuration names.
StoreConfig merge(const LoadOptions& o, const FileMetadata& m, std::vector<std::string>* fromFile) {
  StoreConfig c;
  c.mode = o.mode ? *o.mode : m.mode ? *m.mode : c.mode;
  fromFile->push_back("tensors");
  if (o.optimizer) {
    c.optimizer = *o.optimizer;
  } else if (m.optimizer) {
    c.optimizer = *m.optimizer;
    fromFile->push_back("optimizer");
  }
  const bool averaging = c.mode == Mode::Averaging;
  if (o.staleness) {
    c.stalePolicy = o.staleness->policy;
    c.staleBound = o.staleness->bound;
  } else if (m.staleness && !averaging && (m.staleness->policy != StalePolicy::Accept || m.staleness->bound != UINT64_MAX)) {
    c.stalePolicy = m.staleness->policy;
    c.staleBound = m.staleness->bound;
    fromFile->push_back("staleness");
  }
  // each one the caller's, else the file's (and then the file is to blame for it)
  auto take = [&](const auto& mine, const auto& theirs, auto* field, const char* name, bool applies = true) {
    if (mine) {
      *field = *mine;
    } else if (theirs && applies) {
      *field = *theirs;
      fromFile->push_back(name);
    }
  };
  take(o.nonFinite, m.nonFinite, &c.nonFinite, "nonFinite");
  take(o.syncEvery, m.syncEvery, &c.syncEvery, "syncEvery", averaging);
  take(o.verify, m.verify, &c.verify, "verify");
  if (o.seed) c.seed = *o.seed;
  return c;
}

// Whether the file's own mode and optimizer make a valid store (then a
// clash is with the caller's options).
bool file_is_consistent(const FileMetadata& m) {
  std::vector<std::string> ignored;
  StoreConfig c = merge(LoadOptions{}, m, &ignored);
  std::shared_ptr<Store> probe;
  return Store::create(c, {TensorSpec("x", {1})}, &probe).ok();
}

}  // namespace

Status open(const std::string& file, const st::Header& h, const std::vector<uint8_t>& data, const LoadOptions& o,
            std::shared_ptr<Store>* out) {
  FileMetadata meta;
  if (Status s = read_metadata(file, h, &meta); !s.ok()) return s;
  FileTensors ft;
  if (Status s = read_tensors(file, h, data, meta, &ft); !s.ok()) return s;
  if (meta.model)
    if (Status s = check_model(file, *meta.model, ft); !s.ok()) return s;

  // Options the core cannot tell apart once merged: given for a mode they do not fit.
  std::vector<std::string> fromFile;
  const StoreConfig cfg = merge(o, meta, &fromFile);
  if (o.syncEvery && cfg.mode != Mode::Averaging)
    return Status::Error(Code::Config, std::string("syncEvery applies to mode 'averaging' only, not '") + mode_name(cfg.mode) + "'", "syncEvery");
  if (o.staleness && cfg.mode == Mode::Averaging)
    return Status::Error(Code::Config, "staleness does not apply to mode 'averaging': its pushes are applied together at each round", "staleness");

  std::shared_ptr<Store> store;
  const std::vector<std::string> names = [&] {
    std::vector<std::string> v;
    for (const TensorSpec& p : ft.params) v.push_back(p.name);
    return v;
  }();
  if (Status s = Store::create(cfg, ft.params, &store); !s.ok()) {
    if (s.code != Code::Config) return s;
    const std::string root = s.field.substr(0, s.field.find('.'));
    bool theFiles = false;
    for (const std::string& f : fromFile) theFiles = theFiles || f == root;
    if (!theFiles) return s;  // the caller's own option
    // Valid alone and clashing only with the mode the caller chose: the
    // caller's (an adam checkpoint loaded with mode 'deterministic').
    if (o.mode && (!meta.mode || *o.mode != *meta.mode) && file_is_consistent(meta)) {
      s.message += std::string(" (mode '") + mode_name(*o.mode) + "' comes from the load options, the rest from " + file +
                   ": pass options that fit the mode)";
      return s;
    }
    Status d = Status::Error(Code::DataFormat, file + ": " + s.message);
    d.file = file;
    return d;
  }

  // What applies of the file's state to the store it became.
  RestoreInput in;
  in.version = meta.version;
  in.step = meta.step;
  const kernels::StepArgs& opt = store->config().optimizer;
  if (meta.optimizer && meta.optimizer->kind == opt.kind) {
    const std::vector<std::string> slots = slot_names(opt);
    for (size_t k = 0; k < slots.size(); ++k)
      for (const std::string& n : names)
        if (const std::vector<float>* v = ft.find_state("optimizer." + slots[k] + "." + n))
          in.state.push_back({static_cast<int>(k + 1), {n, v->data(), v->size()}});
  }
  if (store->mode() == Mode::Deterministic && meta.mode == Mode::Deterministic)
    for (const auto& [n, v] : ft.fixed) in.fixed.push_back({n, v.data(), v.size()});
  if (store->mode() == Mode::Averaging && meta.pending > 0) {
    for (const auto& [n, v] : ft.round) in.round.push_back({n, v.data(), v.size()});
    in.pending = meta.pending;
  }
  if (Status s = restore(*store, in); !s.ok()) return s;
  if (meta.model)
    if (Status s = store->set_model(*meta.model); !s.ok()) return s;
  *out = std::move(store);
  return Status::Ok();
}

Status load(const std::string& file, const LoadOptions& o, std::shared_ptr<Store>* out) {
  st::Header h;
  std::vector<uint8_t> data;
  if (Status s = st::read(file, o.maxBytes, &h, &data); !s.ok()) return s;
  return open(file, h, data, o, out);
}

Status inspect(const std::string& file, Inspection* out) {
  st::Header h;
  std::vector<uint8_t> data;
  if (Status s = st::read(file, uint64_t{1} << 40, &h, &data); !s.ok()) return s;
  *out = Inspection{};
  out->metadata = h.metadata;
  const std::string* format = h.meta("format");
  if (const std::string* m = format && *format == kFormat ? h.meta("model") : nullptr) {
    ModelInfo mi;
    if (read_model(file, *m, &mi).ok()) out->model = std::move(mi);
  }
  for (const st::Tensor& t : h.tensors) {
    TensorSummary ts;
    ts.name = t.name;
    ts.dtype = t.dtype;
    ts.shape = t.shape;
    ts.offset = h.dataStart + t.begin;
    ts.elements = elements(t);
    if (is_float(t) && ts.elements > 0) {
      std::vector<float> v(static_cast<size_t>(ts.elements));
      read_floats(t, data.data(), v.data());
      double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
      for (float x : v) {
        lo = std::min(lo, double(x));
        hi = std::max(hi, double(x));
        sum += x;
      }
      ts.numeric = true;
      ts.min = lo;
      ts.max = hi;
      ts.mean = sum / double(v.size());
    }
    out->tensors.push_back(std::move(ts));
  }
  return Status::Ok();
}

}  // namespace gv::ckpt
