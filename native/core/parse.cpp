// Names of the store's configuration enums -> values (store.h). Kept out of
// store.cpp so the parsing and the store's machinery change independently.
#include <string>

#include "store.h"

namespace gv {
namespace {

const char* const kOptKinds[] = {"sgd", "adagrad", "rmsprop", "adam"};
const char* const kInits[] = {"zeros", "glorot", "normal", "values"};
const char* const kStalePolicies[] = {"accept", "scale", "reject"};
const char* const kNonFinite[] = {"reject", "skip"};

}  // namespace

Status parse_store_mode(const std::string& s, Mode* out) {
  // mode_name() is the one list of mode names (store.cpp)
  static const char* const names[] = {mode_name(Mode::Atomic),        mode_name(Mode::Locked),    mode_name(Mode::Versioned),
                                      mode_name(Mode::Deterministic), mode_name(Mode::Averaging), mode_name(Mode::Hogwild)};
  return parse_named(s, names, "mode", out);
}
Status parse_optimizer_kind(const std::string& s, kernels::OptKind* out) { return parse_named(s, kOptKinds, "optimizer.kind", out); }
Status parse_init(const std::string& s, InitKind* out) { return parse_named(s, kInits, "init", out); }
Status parse_stale_policy(const std::string& s, StalePolicy* out) { return parse_named(s, kStalePolicies, "staleness.policy", out); }
Status parse_non_finite(const std::string& s, NonFinitePolicy* out) { return parse_named(s, kNonFinite, "nonFinite", out); }
const char* init_name(InitKind k) { return kInits[static_cast<int>(k)]; }
const char* optimizer_kind_name(kernels::OptKind k) { return kOptKinds[static_cast<int>(k)]; }
const char* stale_policy_name(StalePolicy p) { return kStalePolicies[static_cast<int>(p)]; }
const char* non_finite_name(NonFinitePolicy p) { return kNonFinite[static_cast<int>(p)]; }

}  // namespace gv
