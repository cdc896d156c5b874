#include "metadata.h"

#include <charconv>
#include <cmath>
#include <tuple>

#include "../model/model.h"
#include "json.h"

namespace gv::ckpt {
namespace {

using kernels::OptKind;
using kernels::StepArgs;

// The optimizer's settings by name, and the kinds that have each (the
// facade's OPTIMIZER_KEYS, lib/config.ts).
constexpr unsigned kSgd = 1, kAdagrad = 2, kRmsprop = 4, kAdam = 8, kAll = 15;
struct FloatKey {
  const char* name;
  float StepArgs::*field;
  unsigned kinds;
};
struct BoolKey {
  const char* name;
  bool StepArgs::*field;
  unsigned kinds;
};
// In the order the facade has always written them.
constexpr FloatKey kFloatKeys[] = {
    {"lr", &StepArgs::lr, kAll},
    {"momentum", &StepArgs::momentum, kSgd},
    {"weightDecay", &StepArgs::weightDecay, kAll},
    {"beta1", &StepArgs::beta1, kAdam},
    {"beta2", &StepArgs::beta2, kAdam},
    {"alpha", &StepArgs::alpha, kRmsprop},
    {"eps", &StepArgs::eps, kAdagrad | kRmsprop | kAdam},
};
constexpr BoolKey kBoolKeys[] = {
    {"nesterov", &StepArgs::nesterov, kSgd},
    {"decoupled", &StepArgs::decoupled, kAll},
};

unsigned kind_bit(OptKind k) { return 1u << static_cast<int>(k); }

std::string optimizer_json(const StepArgs& a) {
  const unsigned bit = kind_bit(a.kind);
  std::string j = std::string("{\"kind\":\"") + optimizer_kind_name(a.kind) + "\"";
  auto num = [&](const FloatKey& k) {
    if (k.kinds & bit) j += std::string(",\"") + k.name + "\":" + float_text(a.*k.field);
  };
  auto flag = [&](const BoolKey& k) {
    if (k.kinds & bit) j += std::string(",\"") + k.name + "\":" + (a.*k.field ? "true" : "false");
  };
  num(kFloatKeys[0]);  // lr
  num(kFloatKeys[1]);  // momentum
  flag(kBoolKeys[0]);  // nesterov
  num(kFloatKeys[2]);  // weightDecay
  flag(kBoolKeys[1]);  // decoupled
  for (size_t i = 3; i < std::size(kFloatKeys); ++i) num(kFloatKeys[i]);
  return j + "}";
}

std::string options_json(const StoreConfig& c) {
  const std::string bound = c.staleBound == UINT64_MAX ? "null" : std::to_string(c.staleBound);
  return std::string("{\"staleness\":{\"policy\":\"") + stale_policy_name(c.stalePolicy) + "\",\"bound\":" + bound +
         "},\"nonFinite\":\"" + non_finite_name(c.nonFinite) + "\",\"syncEvery\":" + std::to_string(c.syncEvery) +
         ",\"verify\":" + (c.verify ? "true" : "false") + "}";
}

// A fault of the metadata: the file's, in the JSON header that starts at byte 8.
Status bad(const std::string& file, const std::string& msg) {
  Status s = Status::Error(Code::DataFormat, file + ": " + msg);
  s.file = file;
  s.offset = 8;
  return s;
}

// Built by append: GCC 12 warns falsely (-Wrestrict) on "\"" + string.
std::string quoted(const std::string& v) {
  std::string r(1, '"');
  r += escape_bytes(v);
  r += '"';
  return r;
}

const char* kind_of(const st::Json::Value& v) {
  switch (v.kind) {
    case st::Json::Value::Null: return "null";
    case st::Json::Value::Bool: return "a boolean";
    case st::Json::Value::Int: case st::Json::Value::Real: return "a number";
    case st::Json::Value::String: return "a string";
    case st::Json::Value::Array: return "an array";
    case st::Json::Value::Obj: return "an object";
  }
  return "?";
}

// A metadata value that holds JSON: parsed, or a fault naming the key.
Status json_of(const std::string& file, const std::string& key, const std::string& text, st::Json::Value* v) {
  st::Json json(text.data(), text.size(), 0);
  if (!json.document(v).ok()) return bad(file, "metadata \"" + key + "\" is not JSON");
  return Status::Ok();
}

Status object_of(const std::string& file, const std::string& key, const std::string& text, st::Json::Value* v) {
  Status s = json_of(file, key, text, v);
  if (s.ok() && v->kind != st::Json::Value::Obj) return bad(file, "metadata \"" + key + "\" is not a JSON object");
  return s;
}

// The member of an object with that key (the last one, as JSON.parse does).
const st::Json::Value* member(const st::Json::Value& o, const char* key) {
  const st::Json::Value* found = nullptr;
  for (const auto& m : o.o)
    if (m.first == key) found = &m.second;
  return found;
}

Status read_optimizer(const std::string& file, const std::string& text, StepArgs* out) {
  st::Json::Value o;
  if (Status s = object_of(file, "optimizer", text, &o); !s.ok()) return s;
  const st::Json::Value* kind = member(o, "kind");
  StepArgs a;
  if (!kind || kind->kind != st::Json::Value::String || !parse_optimizer_kind(kind->s, &a.kind).ok())
    return bad(file, std::string("metadata \"optimizer\" has no known kind (got ") +
                         (!kind ? "undefined" : kind->kind == st::Json::Value::String ? quoted(kind->s) : kind_of(*kind)) + ")");
  a.lr = default_lr(a.kind);
  const unsigned bit = kind_bit(a.kind);
  // Settings of other kinds are ignored, as the facade always did.
  for (const FloatKey& k : kFloatKeys) {
    const st::Json::Value* v = member(o, k.name);
    if (!v || !(k.kinds & bit)) continue;
    if (v->kind != st::Json::Value::Int && v->kind != st::Json::Value::Real)
      return bad(file, std::string("metadata \"optimizer\": ") + k.name + " must be a number, got " + kind_of(*v));
    a.*k.field = static_cast<float>(v->d);
  }
  for (const BoolKey& k : kBoolKeys) {
    const st::Json::Value* v = member(o, k.name);
    if (!v || !(k.kinds & bit)) continue;
    if (v->kind != st::Json::Value::Bool) return bad(file, std::string("metadata \"optimizer\": ") + k.name + " must be a boolean, got " + kind_of(*v));
    a.*k.field = v->i != 0;
  }
  *out = a;
  return Status::Ok();
}

Status read_options(const std::string& file, const std::string& text, FileMetadata* out) {
  st::Json::Value o;
  if (Status s = object_of(file, "options", text, &o); !s.ok()) return s;
  auto wrong = [&](const std::string& what, const std::string& rule, const st::Json::Value& v) {
    return bad(file, "metadata \"options\": " + what + " must be " + rule + ", got " +
                         (v.kind == st::Json::Value::String ? quoted(v.s) : std::string(kind_of(v))));
  };
  // A count: a JSON integer of at most 2^53 (what JavaScript holds exactly).
  auto count = [](const st::Json::Value& v, uint64_t min) {
    return v.kind == st::Json::Value::Int && !v.negative && v.i >= static_cast<int64_t>(min) && v.i <= (int64_t{1} << 53);
  };
  if (const st::Json::Value* v = member(o, "staleness")) {
    if (v->kind != st::Json::Value::Obj) return wrong("staleness", "an object", *v);
    Staleness st;
    const st::Json::Value* p = member(*v, "policy");
    if (!p || p->kind != st::Json::Value::String || !parse_stale_policy(p->s, &st.policy).ok())
      return p ? wrong("staleness.policy", "'accept', 'scale' or 'reject'", *p) : bad(file, "metadata \"options\": staleness has no policy");
    if (const st::Json::Value* b = member(*v, "bound"); b && b->kind != st::Json::Value::Null) {
      if (!count(*b, 0)) return wrong("staleness.bound", "a non-negative integer or null", *b);
      st.bound = static_cast<uint64_t>(b->i);
    }
    out->staleness = st;
  }
  if (const st::Json::Value* v = member(o, "nonFinite")) {
    NonFinitePolicy p;
    if (v->kind != st::Json::Value::String || !parse_non_finite(v->s, &p).ok()) return wrong("nonFinite", "'reject' or 'skip'", *v);
    out->nonFinite = p;
  }
  if (const st::Json::Value* v = member(o, "syncEvery")) {
    if (!count(*v, 1)) return wrong("syncEvery", "an integer >= 1", *v);
    out->syncEvery = static_cast<uint64_t>(v->i);
  }
  if (const st::Json::Value* v = member(o, "verify")) {
    if (v->kind != st::Json::Value::Bool) return wrong("verify", "a boolean", *v);
    out->verify = v->i != 0;
  }
  return Status::Ok();
}

// The sizes a model kind's record holds, and the options.
struct ModelKeys {
  bool hidden, mf, features, classes;
};
ModelKeys model_keys(const std::string& kind) {
  const bool mf = kind == "mf";
  return {kind == "mlp", mf, !mf, kind == "softmax" || kind == "mlp"};
}

}  // namespace

std::string model_json(const ModelInfo& m) {
  const ModelKeys k = model_keys(m.kind);
  std::string j = "{\"kind\":" + st::json_string(m.kind);
  if (k.hidden) {
    j += ",\"hidden\":[";
    for (size_t i = 0; i < m.hidden.size(); ++i) j += (i ? "," : "") + std::to_string(m.hidden[i]);
    j += "]";
  }
  if (k.mf) j += ",\"rank\":" + std::to_string(m.rank) + ",\"biases\":" + (m.biases ? "true" : "false") + ",\"l2\":" + float_text(m.l2);
  if (k.features) j += ",\"features\":" + std::to_string(m.features);
  if (k.classes) j += ",\"classes\":" + std::to_string(m.classes);
  if (k.mf) j += ",\"users\":" + std::to_string(m.users) + ",\"items\":" + std::to_string(m.items);
  if (!m.scaler.empty()) {
    // doubles as their shortest decimal that reads back to the same bits
    auto list = [&](const std::vector<double>& v) {
      j += "[";
      char b[32];
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) j += ",";
        const auto r = std::to_chars(b, b + sizeof b, v[i]);
        j.append(b, r.ptr);
      }
      j += "]";
    };
    j += ",\"scaler\":{\"mean\":";
    list(m.scaler.mean);
    j += ",\"scale\":";
    list(m.scaler.scale);
    j += "}";
  }
  return j + "}";
}

Status read_model(const std::string& file, const std::string& text, ModelInfo* out) {
  st::Json::Value o;
  if (Status s = object_of(file, "model", text, &o); !s.ok()) return s;
  const std::string pre = "metadata \"model\": ";
  auto shown = [](const st::Json::Value& v) { return v.kind == st::Json::Value::String ? quoted(v.s) : std::string(kind_of(v)); };
  const st::Json::Value* kind = member(o, "kind");
  model::Kind mk;
  if (!kind || kind->kind != st::Json::Value::String || !model::parse_kind(kind->s, &mk))
    return bad(file, pre + "kind must be one of 'linear', 'logistic', 'softmax', 'svm', 'mlp', 'mf', got " + (kind ? shown(*kind) : "undefined"));
  ModelInfo m;
  m.kind = kind->s;
  const ModelKeys k = model_keys(m.kind);
  // A size: a JSON integer in 1..max.
  auto size = [&](const char* key, bool applies, uint64_t max, uint64_t* field) -> Status {
    const st::Json::Value* v = member(o, key);
    if (!applies) {
      if (v) return bad(file, pre + key + " does not apply to model '" + m.kind + "'");
      return Status::Ok();
    }
    if (!v) return bad(file, pre + "model '" + m.kind + "' needs " + key);
    if (v->kind != st::Json::Value::Int || v->negative || v->i < 1 || static_cast<uint64_t>(v->i) > max)
      return bad(file, pre + key + " must be an integer in 1.." + std::to_string(max) + ", got " +
                           (v->kind == st::Json::Value::Int ? std::to_string(v->i) : shown(*v)));
    *field = static_cast<uint64_t>(v->i);
    return Status::Ok();
  };
  const uint64_t kMaxCount = uint64_t{1} << 32;  // elements of a tensor, at most (kMaxTensorElements)
  uint64_t rank = 0;
  for (auto [key, applies, max, field] : {std::tuple{"features", k.features, kMaxCount, &m.features},
                                          std::tuple{"classes", k.classes, kMaxCount, &m.classes},
                                          std::tuple{"users", k.mf, kMaxCount, &m.users},
                                          std::tuple{"items", k.mf, kMaxCount, &m.items},
                                          std::tuple{"rank", k.mf, uint64_t{4096}, &rank}})
    if (Status s = size(key, applies, max, field); !s.ok()) return s;
  m.rank = static_cast<uint32_t>(rank);
  const st::Json::Value* hidden = member(o, "hidden");
  if (!k.hidden && hidden) return bad(file, pre + "hidden does not apply to model '" + m.kind + "'");
  if (k.hidden) {
    if (!hidden || hidden->kind != st::Json::Value::Array || hidden->a.empty())
      return bad(file, pre + "hidden must be a non-empty array of layer widths, got " + (hidden ? shown(*hidden) : "undefined"));
    for (const auto& w : hidden->a) {
      if (w.kind != st::Json::Value::Int || w.negative || w.i < 1 || w.i > 65536)
        return bad(file, pre + "hidden must hold integers in 1..65536, got " + (w.kind == st::Json::Value::Int ? std::to_string(w.i) : shown(w)));
      m.hidden.push_back(static_cast<uint32_t>(w.i));
    }
  }
  const st::Json::Value* biases = member(o, "biases");
  const st::Json::Value* l2 = member(o, "l2");
  if (!k.mf && (biases || l2)) return bad(file, pre + (biases ? "biases" : "l2") + " does not apply to model '" + m.kind + "'");
  if (k.mf) {
    if (!biases || biases->kind != st::Json::Value::Bool) return bad(file, pre + "biases must be a boolean, got " + (biases ? shown(*biases) : "undefined"));
    m.biases = biases->i != 0;
    if (l2) {
      const bool number = l2->kind == st::Json::Value::Int || l2->kind == st::Json::Value::Real;
      const float x = number ? static_cast<float>(l2->d) : 0.f;
      if (!number || !std::isfinite(x) || x < 0) return bad(file, pre + "l2 must be a float32 >= 0, got " + (number ? float_text(x) : shown(*l2)));
      m.l2 = x;
    }
  }
  // scaler (all but mf): { mean: [features numbers], scale: [features numbers > 0] }
  if (const st::Json::Value* sc = member(o, "scaler")) {
    if (k.mf) return bad(file, pre + "scaler does not apply to model 'mf'");
    if (sc->kind != st::Json::Value::Obj) return bad(file, pre + "scaler must be an object { mean, scale }, got " + shown(*sc));
    for (auto [key, field] : {std::pair{"mean", &m.scaler.mean}, std::pair{"scale", &m.scaler.scale}}) {
      const st::Json::Value* a = member(*sc, key);
      const std::string at = pre + "scaler." + key;
      if (!a || a->kind != st::Json::Value::Array)
        return bad(file, at + " must be an array of " + std::to_string(m.features) + " numbers, got " + (a ? shown(*a) : "undefined"));
      if (a->a.size() != m.features)
        return bad(file, at + " has " + std::to_string(a->a.size()) + " values, the model " + std::to_string(m.features) + " features");
      field->reserve(a->a.size());
      for (size_t i = 0; i < a->a.size(); ++i) {
        const st::Json::Value& x = a->a[i];
        const bool number = x.kind == st::Json::Value::Int || x.kind == st::Json::Value::Real;
        const bool scale = field == &m.scaler.scale;
        if (!number || !std::isfinite(x.d) || (scale && !(x.d > 0)))
          return bad(file, at + "[" + std::to_string(i) + "] must be a finite number" + (scale ? " > 0" : "") + ", got " +
                               (!number ? shown(x) : x.kind == st::Json::Value::Int ? std::to_string(x.i) : std::to_string(x.d)));
        field->push_back(x.d);
      }
    }
  }
  *out = std::move(m);
  return Status::Ok();
}

Metadata metadata_of(const Store& s, const StateImage& img) {
  std::string names = "[";
  for (size_t t = 0; t < s.tensor_count(); ++t) names += std::string(t ? "," : "") + st::json_string(s.tensor(t).name);
  names += "]";
  Metadata m = {
      {"format", kFormat},
      {"mode", mode_name(s.mode())},
      {"version", std::to_string(img.version)},
      {"step", std::to_string(img.step)},
      {"tensors", names},
      {"optimizer", optimizer_json(s.config().optimizer)},
      {"options", options_json(s.config())},
  };
  if (img.pending > 0) m.push_back({"pending", std::to_string(img.pending)});
  if (const ModelInfo model = s.model(); model.known()) m.push_back({"model", model_json(model)});
  return m;
}

Status read_metadata(const std::string& file, const st::Header& h, FileMetadata* out) {
  *out = FileMetadata{};
  const std::string* format = h.meta("format");
  out->ours = format && *format == kFormat;
  if (out->ours) {
    st::Json::Value names;
    const std::string* text = h.meta("tensors");
    const char* notNames = "metadata \"tensors\" is not a JSON array of names";
    if (!text || !json_of(file, "tensors", *text, &names).ok() || names.kind != st::Json::Value::Array) return bad(file, notNames);
    for (const auto& n : names.a) {
      if (n.kind != st::Json::Value::String) return bad(file, notNames);
      out->tensors.push_back(n.s);
    }
  }
  // Counters: at most 15 decimal digits, as written.
  for (auto [key, field] : {std::pair{"version", &out->version}, std::pair{"step", &out->step}, std::pair{"pending", &out->pending}}) {
    const std::string* v = h.meta(key);
    if (!v) continue;
    bool digits = !v->empty() && v->size() <= 15;
    for (char c : *v) digits = digits && c >= '0' && c <= '9';
    if (!digits) return bad(file, std::string("metadata \"") + key + "\" must be a non-negative integer, got " + quoted(*v));
    *field = std::stoull(*v);
  }
  if (const std::string* v = h.meta("mode")) {
    Mode m;
    if (!parse_mode(*v, &m)) return bad(file, "metadata \"mode\" is not a mode: " + quoted(*v));
    out->mode = m;
  }
  if (const std::string* v = h.meta("optimizer")) {
    StepArgs a;
    if (Status s = read_optimizer(file, *v, &a); !s.ok()) return s;
    out->optimizer = a;
  }
  if (const std::string* v = h.meta("options"))
    if (Status s = read_options(file, *v, out); !s.ok()) return s;
  if (const std::string* v = h.meta("shards")) {
    st::Json::Value a;
    const char* notCounts = "metadata \"shards\" is not a JSON array of versions";
    if (!json_of(file, "shards", *v, &a).ok() || a.kind != st::Json::Value::Array) return bad(file, notCounts);
    for (const auto& x : a.a) {
      if (x.kind != st::Json::Value::Int || x.negative || x.i > (int64_t{1} << 53)) return bad(file, notCounts);
      out->shards.push_back(static_cast<uint64_t>(x.i));
    }
  }
  // another writer's "model" is its own business
  if (const std::string* v = out->ours ? h.meta("model") : nullptr) {
    ModelInfo mi;
    if (Status s = read_model(file, *v, &mi); !s.ok()) return s;
    out->model = std::move(mi);
  }
  if (out->pending > 0 && out->mode != Mode::Averaging)
    return bad(file, "metadata \"pending\" (" + std::to_string(out->pending) + ") is for mode 'averaging', not '" +
                         (out->mode ? mode_name(*out->mode) : "undefined") + "'");
  return Status::Ok();
}

}  // namespace gv::ckpt
