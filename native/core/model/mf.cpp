// Model mf: U [users, rank], V [items, rank], bu [users], bi [items] (model.h: tensors and math; batch.h: the shared plumbing).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "batch.h"
#include "families.h"

namespace gv::model::detail {
namespace {

class Mf final : public Model {
 public:
  Mf(const ModelSpec& s, const Dims& d) : Model(s, d) {
    const int64_t r = s.rank;
    tensors_.push_back({"U", {int64_t(d.users), r}, InitKind::Normal, 0.1f});
    tensors_.push_back({"V", {int64_t(d.items), r}, InitKind::Normal, 0.1f});
    if (s.biases) {
      tensors_.push_back({"bu", {int64_t(d.users)}, InitKind::Zeros});
      tensors_.push_back({"bi", {int64_t(d.items)}, InitKind::Zeros});
    }
  }
  bool sparse_gradient(const Dataset&, size_t) const override { return true; }
  size_t workspace_floats(const Dataset&, size_t) const override { return 0; }
  void rows_needed(const Dataset& d, const uint32_t* rows, size_t n, bool, Touched* need) const override {
    const size_t R = spec_.rank;
    const int T = spec_.biases ? 4 : 2;
    start_touched(need, T, {true, true, true, true}, {R, R, 1, 1});
    RowSet& ru = rowset(0, d.users);
    RowSet& ri = rowset(1, d.items);
    for (size_t k = 0; k < n; ++k) {
      ru.add(need[0], d.user[rows[k]]);
      ri.add(need[1], d.item[rows[k]]);
    }
    ru.finish(need[0]);
    ri.finish(need[1]);
    if (spec_.biases) {
      need[2].rows = need[0].rows;
      need[3].rows = need[1].rows;
    }
  }

  float predict(const float* const* p, uint32_t u, uint32_t i) const {
    const size_t R = spec_.rank;
    float z = K().dot(p[0] + size_t{u} * R, p[1] + size_t{i} * R, R);
    if (spec_.biases) z += p[2][u] + p[3][i];
    return z;
  }

  double grad(const float* const* p, const Dataset& d, const uint32_t* rows, size_t n, float* const* g, float*,
              Touched* touched, bool) const override {
    const size_t R = spec_.rank;
    const int T = spec_.biases ? 4 : 2;
    start_touched(touched, T, {true, true, true, true}, {R, R, 1, 1});
    RowSet& ru = rowset(0, d.users);
    RowSet& ri = rowset(1, d.items);
    const float inv = 1.f / static_cast<float>(n), l2 = spec_.l2;
    double sum = 0;
    for (size_t k = 0; k < n; ++k) {
      const uint32_t r = rows[k], u = d.user[r], i = d.item[r];
      const float e = predict(p, u, i) - d.labels[r];
      const float* pu = p[0] + size_t{u} * R;
      const float* pi = p[1] + size_t{i} * R;
      // the objective: squared error plus the L2 term of the two rows
      sum += 0.5 * double(e) * e;
      if (l2 != 0.f) sum += 0.5 * l2 * (double(K().dot(pu, pu, R)) + K().dot(pi, pi, R));
      float* gu = g[0] + size_t{u} * R;
      float* gi = g[1] + size_t{i} * R;
      // g += (e * other + l2 * own) / n
      K().axpby(gu, gu, pi, e * inv, 1.f, R);
      K().axpby(gi, gi, pu, e * inv, 1.f, R);
      if (l2 != 0.f) {
        K().axpby(gu, gu, pu, l2 * inv, 1.f, R);
        K().axpby(gi, gi, pi, l2 * inv, 1.f, R);
      }
      if (spec_.biases) {
        g[2][u] += e * inv;
        g[3][i] += e * inv;
      }
      ru.add(touched[0], u);
      ri.add(touched[1], i);
    }
    ru.finish(touched[0]);
    ri.finish(touched[1]);
    if (spec_.biases) {
      touched[2].rows = touched[0].rows;
      touched[3].rows = touched[1].rows;
    }
    return sum;
  }

  void eval(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float*,
            EvalSums* out) const override {
    for (uint64_t r = begin; r < end; ++r) {
      double e = double(predict(p, d.user[r], d.item[r])) - d.labels[r];
      out->loss += 0.5 * e * e;
      out->sqErr += e * e;
    }
    out->rows += end - begin;
  }
  void outputs(const float* const* p, const Dataset& d, uint64_t begin, uint64_t end, float*, float* out) const override {
    for (uint64_t r = begin; r < end; ++r) out[r - begin] = predict(p, d.user[r], d.item[r]);
  }
};

}  // namespace

std::unique_ptr<Model> make_mf(const ModelSpec& spec, const Dims& dims) { return std::unique_ptr<Model>(new Mf(spec, dims)); }

}  // namespace gv::model::detail
