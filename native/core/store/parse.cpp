// The names of the store's configuration enums, both ways (store.h): the
// one list of each.
#include <charconv>
#include <cstdlib>
#include <string>

#include "../store.h"

namespace gv {
namespace {

const char* const kModeNames[] = {"atomic", "locked", "versioned", "deterministic", "averaging", "hogwild"};
const char* const kOptKinds[] = {"sgd", "adagrad", "rmsprop", "adam"};
const char* const kInits[] = {"zeros", "glorot", "normal", "values"};
const char* const kStalePolicies[] = {"accept", "scale", "reject"};
const char* const kNonFinite[] = {"reject", "skip"};

}  // namespace

const char* mode_name(Mode m) { return kModeNames[static_cast<int>(m)]; }

bool parse_mode(const std::string& s, Mode* out) {
  for (int i = 0; i < 6; ++i)
    if (s == kModeNames[i]) {
      *out = static_cast<Mode>(i);
      return true;
    }
  return false;
}

Status parse_store_mode(const std::string& s, Mode* out) {
  return parse_named(s, kModeNames, "mode", out);
}
Status parse_optimizer_kind(const std::string& s, kernels::OptKind* out) { return parse_named(s, kOptKinds, "optimizer.kind", out); }
Status parse_init(const std::string& s, InitKind* out) { return parse_named(s, kInits, "init", out); }
Status parse_stale_policy(const std::string& s, StalePolicy* out) { return parse_named(s, kStalePolicies, "staleness.policy", out); }
Status parse_non_finite(const std::string& s, NonFinitePolicy* out) { return parse_named(s, kNonFinite, "nonFinite", out); }
const char* init_name(InitKind k) { return kInits[static_cast<int>(k)]; }
const char* optimizer_kind_name(kernels::OptKind k) { return kOptKinds[static_cast<int>(k)]; }
const char* stale_policy_name(StalePolicy p) { return kStalePolicies[static_cast<int>(p)]; }
const char* non_finite_name(NonFinitePolicy p) { return kNonFinite[static_cast<int>(p)]; }

std::string float_text(float x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);  // shortest round trip
  return std::string(buf, r.ptr);
}

double float_decimal(float x) { return std::strtod(float_text(x).c_str(), nullptr); }

}  // namespace gv
