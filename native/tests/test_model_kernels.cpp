// (Long on purpose: one case per model kernel, sharing the references.)
// The model kernels (dense, sparse, softmax, logistic, relu; native/kernels/
// README.md) on every instruction set this CPU supports (iterated in process
// with table_for) against the scalar reference and a double-precision one:
// sizes 0, 1, around every vector width and odd large ones, aligned and
// misaligned pointers, canaries around every output, extreme logits. The
// reductions are held to the named tolerances of kernels/tolerance.h, the
// elementwise kernels to the scalar bits. Prints the worst error of each
// reduction as a fraction of its bound (how much room the tolerance leaves).
#include <algorithm>
#include <cfloat>
#include <map>
#include <random>

#include "check.h"
#include "kernels/dispatch.h"
#include "kernels/tolerance.h"
#include "kernels/vmath/scalar.h"
#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/vmath/avx2.h"
#include "kernels/vmath/avx512.h"
#pragma GCC diagnostic pop
#endif

using namespace gv::kernels;
using gvtest::same_bits;

namespace {

using Buffer = gvtest::GuardedBuffer;

void fill(Buffer& b, std::mt19937_64& rng, float scale = 1.f) {
  std::uniform_real_distribution<float> u(-scale, scale);
  for (size_t i = 0; i < b.size(); ++i) b[i] = u(rng);
}
void copy_into(Buffer& dst, const Buffer& src) {
  if (src.size()) std::memcpy(dst.data(), src.data(), src.size() * 4);
}
size_t first_difference(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!same_bits(a[i], b[i])) return i;
  return n;
}

// The worst |error| / bound seen per check, reported at the end.
std::map<std::string, double>& worst() {
  static std::map<std::string, double> w;
  return w;
}
// |got - want| <= bound, recorded under `what`.
bool within(const char* what, double got, double want, double bound) {
  double err = std::fabs(got - want);
  double r = bound > 0 ? err / bound : (err == 0 ? 0 : INFINITY);
  double& w = worst()[what];
  w = std::max(w, r);
  return err <= bound && std::isfinite(got);
}

std::string describe(const Table& t, size_t n, size_t mis) {
  return std::string(t.name) + " n=" + std::to_string(n) + " misalign=" + std::to_string(mis);
}

const size_t kSizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000, 100003};

// ---------------------------------------------------------------- dense

void test_dot(const Table& ref, const Table& t) {
  std::mt19937_64 rng(11);
  std::vector<size_t> sizes(std::begin(kSizes), std::end(kSizes));
  sizes.push_back(1000003);
  for (size_t n : sizes)
    for (size_t mis : {0, 1, 3}) {
      gvtest::Context ctx("dot " + describe(t, n, mis));
      Buffer x(n, mis), y(n, (mis * 5) % 8);
      fill(x, rng);
      fill(y, rng);
      double exact = 0, sumAbs = 0;
      for (size_t i = 0; i < n; ++i) {
        exact += double(x[i]) * double(y[i]);
        sumAbs += std::fabs(double(x[i]) * double(y[i]));
      }
      const double bound = tol::reduce_bound(n, sumAbs);
      const float want = ref.dot(x.data(), y.data(), n), got = t.dot(x.data(), y.data(), n);
      CHECK_MSG(within("dot vs double", got, exact, bound), got << " vs exact " << exact << " bound " << bound);
      CHECK_MSG(within("dot vs double", want, exact, bound), "scalar " << want << " vs exact " << exact);
      CHECK_MSG(within("dot vs scalar", got, want, 2 * bound), got << " vs scalar " << want);
      if (n == 0) CHECK(same_bits(got, 0.f));
    }
}

struct Shape {
  size_t m, n, pad;
};
const Shape kGemvShapes[] = {{0, 5, 0}, {5, 0, 0}, {1, 1, 0}, {3, 7, 1},  {4, 8, 0},     {5, 9, 3},
                             {7, 16, 0}, {8, 17, 2}, {17, 33, 5}, {64, 1000, 0}, {10, 1023, 1}, {33, 784, 0}};
const float kAlphaBeta[][2] = {{1.f, 0.f}, {0.5f, 1.f}, {-2.f, 0.25f}, {1.f, 1.f}};

void test_gemv(const Table& ref, const Table& t) {
  std::mt19937_64 rng(12);
  for (const Shape& s : kGemvShapes)
    for (int trans = 0; trans < 2; ++trans)
      for (auto& ab : kAlphaBeta) {
        const float alpha = ab[0], beta = ab[1];
        const size_t lda = s.n + s.pad, rows = s.m;
        const size_t xn = trans ? s.m : s.n, yn = trans ? s.n : s.m;
        gvtest::Context ctx(std::string(trans ? "gemv_t " : "gemv ") + t.name + " m=" + std::to_string(s.m) +
                            " n=" + std::to_string(s.n) + " lda=" + std::to_string(lda) +
                            " alpha=" + std::to_string(alpha) + " beta=" + std::to_string(beta));
        Buffer A(rows * lda, 1), x(xn, 3), y0(yn, 0), yr(yn, 2), yt(yn, 5);
        fill(A, rng);
        fill(x, rng);
        fill(y0, rng);
        // beta == 0 must not read y: start from NaN there.
        if (beta == 0.f)
          for (size_t i = 0; i < yn; ++i) y0[i] = NAN;
        copy_into(yr, y0);
        copy_into(yt, y0);
        auto fn = trans ? &Table::gemv_t : &Table::gemv;
        (ref.*fn)(A.data(), lda, x.data(), yr.data(), s.m, s.n, alpha, beta);
        (t.*fn)(A.data(), lda, x.data(), yt.data(), s.m, s.n, alpha, beta);
        for (size_t o = 0; o < yn; ++o) {
          double exact = 0, sumAbs = 0;
          for (size_t i = 0; i < xn; ++i) {
            double a = trans ? A[i * lda + o] : A[o * lda + i];
            exact += a * double(x[i]);
            sumAbs += std::fabs(a * double(x[i]));
          }
          exact *= alpha;
          sumAbs *= std::fabs(alpha);
          if (beta != 0.f) {
            exact += double(beta) * y0[o];
            sumAbs += std::fabs(double(beta) * y0[o]);
          }
          const double bound = tol::reduce_bound(xn + 2, sumAbs);
          CHECK_MSG(within("gemv vs double", yt[o], exact, bound), "y[" << o << "] " << yt[o] << " vs " << exact);
          CHECK_MSG(within("gemv vs double", yr[o], exact, bound), "scalar y[" << o << "] " << yr[o] << " vs " << exact);
        }
        CHECK(yt.guards_intact());
      }
}

struct GemmShape {
  size_t m, n, k;
};
const GemmShape kGemmShapes[] = {{0, 5, 5}, {5, 0, 5},   {5, 5, 0},     {1, 1, 1},     {3, 7, 9},
                                 {4, 16, 8}, {5, 17, 257}, {17, 33, 31}, {2, 8, 300}, {32, 128, 200},
                                 {64, 100, 1024}};

void test_gemm(const Table& ref, const Table& t) {
  std::mt19937_64 rng(13);
  for (const GemmShape& s : kGemmShapes)
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb)
        for (size_t pad : {0, 3}) {
          const size_t lda = (ta ? s.m : s.k) + pad, ldb = (tb ? s.k : s.n) + pad, ldc = s.n + pad;
          const size_t arows = ta ? s.k : s.m, brows = tb ? s.n : s.k;
          const float alpha = pad ? -0.75f : 1.f;
          gvtest::Context ctx(std::string("gemm ") + t.name + (ta ? " A^T" : " A") + (tb ? " B^T" : " B") +
                              " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
                              " pad=" + std::to_string(pad));
          Buffer A(arows * lda, 1), B(brows * ldb, 2), C0(s.m * ldc, 3), Cr(s.m * ldc, 0), Ct(s.m * ldc, 1);
          fill(A, rng);
          fill(B, rng);
          fill(C0, rng);
          copy_into(Cr, C0);
          copy_into(Ct, C0);
          ref.gemm(ta, tb, s.m, s.n, s.k, alpha, A.data(), lda, B.data(), ldb, Cr.data(), ldc);
          t.gemm(ta, tb, s.m, s.n, s.k, alpha, A.data(), lda, B.data(), ldb, Ct.data(), ldc);
          for (size_t i = 0; i < s.m; ++i)
            for (size_t j = 0; j < ldc; ++j) {
              const size_t c = i * ldc + j;
              if (j >= s.n) {  // padding between rows is not C: untouched
                CHECK_MSG(same_bits(Ct[c], C0[c]), "wrote padding at row " << i << " column " << j);
                continue;
              }
              double exact = 0, sumAbs = 0;
              for (size_t p = 0; p < s.k; ++p) {
                double a = ta ? A[p * lda + i] : A[i * lda + p];
                double b = tb ? B[j * ldb + p] : B[p * ldb + j];
                exact += a * b;
                sumAbs += std::fabs(a * b);
              }
              exact = double(C0[c]) + alpha * exact;
              sumAbs = std::fabs(double(C0[c])) + std::fabs(alpha) * sumAbs;
              const double bound = tol::reduce_bound(s.k + 1, sumAbs);
              CHECK_MSG(within("gemm vs double", Ct[c], exact, bound), "C[" << i << "," << j << "] " << Ct[c] << " vs " << exact);
              CHECK_MSG(within("gemm vs double", Cr[c], exact, bound), "scalar C[" << i << "," << j << "] " << Cr[c]);
            }
          CHECK(Ct.guards_intact());
        }
}

// ---------------------------------------------------------------- sparse

void test_sparse(const Table& ref, const Table& t) {
  std::mt19937_64 rng(14);
  const size_t dim = 5003;
  for (size_t nnz : kSizes)
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("sparse " + describe(t, nnz, mis));
      Buffer values(nnz, mis), dense(dim, (mis + 1) % 2), dr(dim, 0), dt(dim, 3);
      fill(values, rng);
      fill(dense, rng);
      std::vector<uint32_t> raw(nnz + 8);
      uint32_t* idx = raw.data() + mis;  // misaligned indices too
      std::uniform_int_distribution<uint32_t> u(0, dim - 1);
      for (size_t i = 0; i < nnz; ++i) idx[i] = i % 5 == 4 ? idx[i - 1] : u(rng);  // repeats included
      if (nnz > 2) idx[nnz - 1] = dim - 1;  // the last element of dense
      double exact = 0, sumAbs = 0;
      for (size_t i = 0; i < nnz; ++i) {
        exact += double(values[i]) * dense[idx[i]];
        sumAbs += std::fabs(double(values[i]) * dense[idx[i]]);
      }
      const double bound = tol::reduce_bound(nnz, sumAbs);
      const float want = ref.sparse_dot(values.data(), idx, nnz, dense.data());
      const float got = t.sparse_dot(values.data(), idx, nnz, dense.data());
      CHECK_MSG(within("sparse_dot vs double", got, exact, bound), got << " vs " << exact);
      CHECK_MSG(within("sparse_dot vs double", want, exact, bound), "scalar " << want << " vs " << exact);
      // Scatter: the scalar bits, repeated indices adding up in order.
      copy_into(dr, dense);
      copy_into(dt, dense);
      ref.sparse_axpy(dr.data(), idx, values.data(), nnz, -0.3f);
      t.sparse_axpy(dt.data(), idx, values.data(), nnz, -0.3f);
      size_t d = first_difference(dr.data(), dt.data(), dim);
      CHECK_MSG(d == dim, "sparse_axpy differs from scalar at " << d);
      CHECK(dt.guards_intact());
      if (nnz >= 5) {  // the reference: a repeated index received both adds
        float want4 = dense[idx[3]];
        for (size_t i = 0; i < nnz; ++i)
          if (idx[i] == idx[3]) want4 = want4 + -0.3f * values[i];
        CHECK(same_bits(dr[idx[3]], want4));
      }
    }
}

// nonzeros: the same indices, values (bits) and count as the reference for
// every length around the register blocks, with -0, NaN, denormals and
// runs of zeros; the buffers' slack is all a vector version may write.
void test_nonzeros(const Table& ref, const Table& t) {
  std::mt19937_64 rng(16);
  for (size_t n : {size_t(0), size_t(1), size_t(15), size_t(16), size_t(17), size_t(33), size_t(784), size_t(1000)})
    for (int density : {0, 1, 2, 3}) {
      gvtest::Context ctx(std::string("nonzeros ") + t.name + " n " + std::to_string(n) + " density " + std::to_string(density));
      std::vector<float> x(n);
      for (size_t j = 0; j < n; ++j) {
        const uint64_t r = rng() % 8;
        x[j] = density == 0 ? 0.f : density == 3 ? 1.f + j : r < 4 ? 0.f : r == 4 ? -0.f : r == 5 ? NAN : r == 6 ? 1e-42f : float(j) - 3.5f;
      }
      std::vector<uint32_t> ir(n + 16, 7), it(n + 32, 7);
      std::vector<float> vr(n + 16, 7.f), vt(n + 32, 7.f);
      const size_t kr = ref.nonzeros(x.data(), n, ir.data(), vr.data());
      const size_t kt = t.nonzeros(x.data(), n, it.data(), vt.data());
      CHECK_EQ(kt, kr);
      size_t want = 0;
      for (float v : x) want += v != 0.f;
      CHECK_EQ(kr, want);
      for (size_t k = 0; k < std::min(kr, kt); ++k) {
        CHECK_EQ(it[k], ir[k]);
        CHECK(same_bits(vt[k], vr[k]));
      }
      for (size_t k = n + 16; k < n + 32; ++k) CHECK(it[k] == 7 && same_bits(vt[k], 7.f));  // nothing past the slack
    }
}

// rows_gather / rows_scatter: the scalar bits for every width around the
// register blocks (8, 32) and sparse rows with repeated indices.
void test_rows(const Table& ref, const Table& t) {
  std::mt19937_64 rng(15);
  const size_t rowsOfW = 301;
  for (size_t width : {size_t(1), size_t(7), size_t(8), size_t(9), size_t(10), size_t(16), size_t(31), size_t(32),
                       size_t(33), size_t(40), size_t(64), size_t(65), size_t(128)})
    for (size_t nnz : {size_t(0), size_t(1), size_t(5), size_t(64), size_t(300)})
      for (size_t mis : {0, 1}) {
        gvtest::Context ctx("rows " + describe(t, width, mis) + " nnz " + std::to_string(nnz));
        Buffer W(rowsOfW * width, mis), values(nnz, (mis + 1) % 2), z0(width, mis), d(width, 0);
        fill(W, rng);
        fill(values, rng);
        fill(z0, rng);
        fill(d, rng);
        std::vector<uint32_t> idx(nnz + 1);
        std::uniform_int_distribution<uint32_t> u(0, rowsOfW - 1);
        for (size_t k = 0; k < nnz; ++k) idx[k] = k % 7 == 6 ? idx[k - 1] : u(rng);  // repeats included
        if (nnz > 1) idx[nnz - 1] = rowsOfW - 1;  // the last row of W
        Buffer zr(width, 0), zt(width, 3);
        copy_into(zr, z0);
        copy_into(zt, z0);
        ref.rows_gather(zr.data(), W.data(), width, idx.data(), values.data(), nnz);
        t.rows_gather(zt.data(), W.data(), width, idx.data(), values.data(), nnz);
        size_t at = first_difference(zr.data(), zt.data(), width);
        CHECK_MSG(at == width, "rows_gather differs from scalar at " << at);
        CHECK(zt.guards_intact());
        Buffer Gr(rowsOfW * width, 0), Gt(rowsOfW * width, 1);
        copy_into(Gr, W);
        copy_into(Gt, W);
        ref.rows_scatter(Gr.data(), width, idx.data(), values.data(), nnz, d.data());
        t.rows_scatter(Gt.data(), width, idx.data(), values.data(), nnz, d.data());
        at = first_difference(Gr.data(), Gt.data(), rowsOfW * width);
        CHECK_MSG(at == rowsOfW * width, "rows_scatter differs from scalar at " << at);
        CHECK(Gt.guards_intact());
        // rows_step: the fused update, the bits of the reference (repeated indices step in order)
        Buffer Sr(rowsOfW * width, 0), St(rowsOfW * width, 1);
        copy_into(Sr, W);
        copy_into(St, W);
        ref.rows_step(Sr.data(), width, idx.data(), values.data(), nnz, d.data(), -0.375f);
        t.rows_step(St.data(), width, idx.data(), values.data(), nnz, d.data(), -0.375f);
        at = first_difference(Sr.data(), St.data(), rowsOfW * width);
        CHECK_MSG(at == rowsOfW * width, "rows_step differs from scalar at " << at);
        CHECK(St.guards_intact());
        if (nnz >= 1) {  // the reference itself: the step of the scatter's gradient into zeros
          const size_t j = size_t{idx[0]} * width;
          float want = W[j];
          for (size_t k = 0; k < nnz; ++k)
            if (idx[k] == idx[0]) want = want + -0.375f * (0.f + values[k] * d[0]);
          CHECK(same_bits(Sr[j], want));
        }
        if (nnz >= 7 && width > 0) {  // the reference itself: z[0] is the sequential sum
          float want = z0[0];
          for (size_t k = 0; k < nnz; ++k) want = want + values[k] * W[size_t{idx[k]} * width];
          CHECK(same_bits(zr[0], want));
        }
      }
}

// ---------------------------------------------------------------- softmax

// Double-precision softmax cross-entropy of one row.
double ref_softmax(const float* z, size_t k, uint32_t label, std::vector<double>* p) {
  double mx = z[0];
  for (size_t j = 1; j < k; ++j) mx = std::max(mx, double(z[j]));
  double s = 0;
  for (size_t j = 0; j < k; ++j) s += std::exp(double(z[j]) - mx);
  if (p) {
    p->resize(k);
    for (size_t j = 0; j < k; ++j) (*p)[j] = std::exp(double(z[j]) - mx) / s;
  }
  return std::log(s) - (double(z[label]) - mx);
}

void check_softmax_row(const Table& t, const float* z, size_t k, uint32_t label, size_t mis) {
  std::vector<double> p;
  const double loss = ref_softmax(z, k, label, &p);
  Buffer g(k, mis), inplace(k, mis);
  const float got = t.softmax_xent(z, k, label, g.data());
  CHECK_MSG(within("softmax loss vs double", got, loss, tol::kLossRel * std::max(1.0, std::fabs(loss))),
            "loss " << got << " vs " << loss << " (label " << label << ")");
  for (size_t j = 0; j < k; ++j) {
    const double want = p[j] - (j == label ? 1.0 : 0.0);
    if (!within("softmax grad vs double", g[j], want, tol::kSoftmaxAbs)) {
      CHECK_MSG(false, "grad[" << j << "] " << g[j] << " vs " << want);
      break;
    }
  }
  CHECK(g.guards_intact());
  // In place and without a gradient: the same bits on the same table.
  if (k) std::memcpy(inplace.data(), z, k * 4);
  const float got2 = t.softmax_xent(inplace.data(), k, label, inplace.data());
  CHECK(same_bits(got, got2));
  CHECK_EQ(first_difference(g.data(), inplace.data(), k), k);
  CHECK(same_bits(got, t.softmax_xent(z, k, label, nullptr)));
  // log-softmax against log p.
  Buffer ls(k, mis);
  t.log_softmax(ls.data(), z, k);
  for (size_t j = 0; j < k; ++j) {
    const double want = std::log(p[j]) ;
    const double w = std::isfinite(want) ? want : double(z[j]) - double(*std::max_element(z, z + k)) - std::log(1.0);
    if (!within("log_softmax vs double", ls[j], w, tol::kLossRel * std::max(1.0, std::fabs(w)))) {
      CHECK_MSG(false, "log_softmax[" << j << "] " << ls[j] << " vs " << w);
      break;
    }
  }
  CHECK(ls.guards_intact());
}

void test_softmax(const Table& ref, const Table& t) {
  std::mt19937_64 rng(15);
  for (size_t k : {1, 2, 3, 7, 8, 9, 10, 15, 16, 17, 31, 33, 100, 1000, 10007})
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("softmax_xent " + describe(t, k, mis));
      Buffer z(k, mis);
      fill(z, rng, 6.f);
      for (uint32_t label : {uint32_t(0), uint32_t(k / 2), uint32_t(k - 1)}) {
        check_softmax_row(t, z.data(), k, label, mis);
        // Scalar and SIMD agree within twice the tolerance against double.
        const float a = ref.softmax_xent(z.data(), k, label, nullptr), b = t.softmax_xent(z.data(), k, label, nullptr);
        CHECK(within("softmax loss vs scalar", b, a, 2 * tol::kLossRel * std::max(1.0, std::fabs(double(a)))));
      }
    }
  // Extreme logits: no NaN or Inf, the right limits.
  const std::vector<std::vector<float>> extremes = {
      {80.f, -80.f, 0.f},          {1e4f, -1e4f, 0.f, 1.f},       {-1e4f, -1e4f, -1e4f},
      {1e4f, 1e4f},                {-80.f, 80.f, 80.f, -80.f, 0.f, 1e4f, -1e4f, 3.f, 2.f},
      {88.f, 89.f, 200.f, -200.f}, std::vector<float>(17, -1e4f)};
  for (size_t e = 0; e < extremes.size(); ++e) {
    const auto& row = extremes[e];
    for (uint32_t label = 0; label < row.size(); ++label) {
      gvtest::Context ctx(std::string("softmax_xent extreme ") + t.name + " row " + std::to_string(e) + " label " +
                          std::to_string(label));
      check_softmax_row(t, row.data(), row.size(), label, 1);
      std::vector<float> g(row.size());
      float loss = t.softmax_xent(row.data(), row.size(), label, g.data());
      bool finite = std::isfinite(loss);
      double sum = 0;
      for (float v : g) finite = finite && std::isfinite(v), sum += v;
      CHECK(finite);
      CHECK(std::fabs(sum) < 1e-5);  // gradients of a softmax sum to zero
    }
  }
  // The batch: the row kernel over each row.
  for (size_t rows : {0, 1, 5, 32}) {
    const size_t k = 10;
    gvtest::Context ctx(std::string("softmax_xent_batch ") + t.name + " rows=" + std::to_string(rows));
    Buffer z(rows * k, 1), g(rows * k, 0), gr(rows * k, 2);
    fill(z, rng, 4.f);
    std::vector<uint32_t> labels(rows);
    for (auto& l : labels) l = static_cast<uint32_t>(rng() % k);
    double want = 0;
    for (size_t r = 0; r < rows; ++r) want += t.softmax_xent(z.data() + r * k, k, labels[r], gr.data() + r * k);
    const double got = t.softmax_xent_batch(z.data(), rows, k, labels.data(), g.data());
    CHECK_EQ(got, want);
    CHECK_EQ(first_difference(g.data(), gr.data(), rows * k), rows * k);
    CHECK_EQ(t.softmax_xent_batch(z.data(), rows, k, labels.data(), nullptr), want);
    CHECK(g.guards_intact());
  }
}

// ---------------------------------------------------------------- logistic

void fill_logits(Buffer& b, std::mt19937_64& rng) {
  const float special[] = {0.f, -0.f, 80.f, -80.f, 1e4f, -1e4f, 87.f, -87.f, 88.5f, -88.5f, 1e-30f, -1e-30f, 17.f};
  std::uniform_real_distribution<float> u(-20.f, 20.f);
  for (size_t i = 0; i < b.size(); ++i) b[i] = rng() % 8 == 0 ? special[rng() % std::size(special)] : u(rng);
}

void test_logistic(const Table& ref, const Table& t) {
  std::mt19937_64 rng(16);
  for (size_t n : kSizes)
    for (size_t mis : {0, 1}) {
      gvtest::Context ctx("sigmoid/logloss " + describe(t, n, mis));
      Buffer z(n, mis), y(n, (mis + 2) % 4), sr(n, 0), st(n, 3), gr(n, 1), gt(n, 2);
      fill_logits(z, rng);
      for (size_t i = 0; i < n; ++i) y[i] = rng() % 2 ? 1.f : -1.f;
      ref.sigmoid(sr.data(), z.data(), n);
      t.sigmoid(st.data(), z.data(), n);
      size_t d = first_difference(sr.data(), st.data(), n);
      CHECK_MSG(d == n, "sigmoid differs from scalar at " << d << ": z=" << z[d]);
      CHECK(st.guards_intact());
      for (size_t i = 0; i < n; ++i) {  // the reference against double
        const double w = 1.0 / (1.0 + std::exp(-double(z[i])));
        if (!within("sigmoid vs double", sr[i], w, 8 * FLT_EPSILON * w + 1e-37)) {
          CHECK_MSG(false, "sigmoid(" << z[i] << ") = " << sr[i] << " vs " << w);
          break;
        }
      }
      // In place.
      Buffer ip(n, mis);
      copy_into(ip, z);
      t.sigmoid(ip.data(), ip.data(), n);
      CHECK_EQ(first_difference(ip.data(), sr.data(), n), n);

      const float lr = ref.logloss(z.data(), y.data(), gr.data(), n);
      const float lt = t.logloss(z.data(), y.data(), gt.data(), n);
      d = first_difference(gr.data(), gt.data(), n);
      CHECK_MSG(d == n, "logloss gradient differs from scalar at " << d);
      CHECK(gt.guards_intact());
      double exact = 0;
      for (size_t i = 0; i < n; ++i) {
        const double m = double(y[i]) * z[i];
        const double li = std::max(-m, 0.0) + std::log1p(std::exp(-std::fabs(m)));
        exact += li;
        float g1;
        const float l1 = ref.logloss(z.data() + i, y.data() + i, &g1, 1);
        const double gw = -double(y[i]) / (1.0 + std::exp(m));
        if (!within("logloss elem vs double", l1, li, tol::kLossRel * std::max(1.0, li)) ||
            !within("logloss grad vs double", g1, gw, tol::kSoftmaxAbs)) {
          CHECK_MSG(false, "logloss(m=" << m << ") = " << l1 << " grad " << g1 << " vs " << li << ", " << gw);
          break;
        }
      }
      const double bound = tol::reduce_bound(n, exact) + tol::kLossRel * exact;
      CHECK_MSG(within("logloss sum vs double", lt, exact, bound), lt << " vs " << exact);
      CHECK(within("logloss sum vs scalar", lt, lr, 2 * bound));
      CHECK(same_bits(lt, t.logloss(z.data(), y.data(), nullptr, n)));
    }
  // The limits.
  const float zs[] = {1e4f, -1e4f, 80.f, -80.f};
  for (float z : zs)
    for (float y : {1.f, -1.f}) {
      gvtest::Context ctx(std::string("logloss limit ") + t.name + " z=" + std::to_string(z) + " y=" + std::to_string(y));
      float g;
      const float l = t.logloss(&z, &y, &g, 1);
      const float m = y * z;
      CHECK(std::isfinite(l) && std::isfinite(g));
      if (m > 0) {
        CHECK(l >= 0.f && l < 2e-35f);
        CHECK(std::fabs(g) < 2e-35f);
      } else {
        CHECK(std::fabs(l - (-m)) <= 1e-6f * -m);
        CHECK_EQ(g, -y);
      }
      float s;
      t.sigmoid(&s, &z, 1);
      CHECK(z > 0 ? s == 1.f : s < 2e-35f);
    }
}

// ---------------------------------------------------------------- relu

void test_relu(const Table& ref, const Table& t) {
  std::mt19937_64 rng(17);
  for (size_t n : kSizes)
    for (size_t mis : {0, 1, 3}) {
      gvtest::Context ctx("relu " + describe(t, n, mis));
      Buffer x(n, mis), a(n, 0), b(n, (mis + 1) % 4), g(n, 2), ga(n, 1), gb(n, mis);
      fill(x, rng);
      fill(g, rng);
      for (size_t i = 0; i < n; i += 7) x[i] = (i / 7) % 3 == 0 ? -0.f : (i / 7) % 3 == 1 ? 0.f : NAN;
      ref.relu(a.data(), x.data(), n);
      t.relu(b.data(), x.data(), n);
      CHECK_EQ(first_difference(a.data(), b.data(), n), n);
      CHECK(b.guards_intact());
      for (size_t i = 0; i < n; ++i)
        if (!same_bits(a[i], x[i] > 0.f ? x[i] : 0.f)) {
          CHECK_MSG(false, "relu reference at " << i);
          break;
        }
      Buffer ip(n, mis);
      copy_into(ip, x);
      t.relu(ip.data(), ip.data(), n);
      CHECK_EQ(first_difference(a.data(), ip.data(), n), n);
      copy_into(ga, g);
      copy_into(gb, g);
      ref.relu_backward(ga.data(), x.data(), n);
      t.relu_backward(gb.data(), x.data(), n);
      CHECK_EQ(first_difference(ga.data(), gb.data(), n), n);
      CHECK(gb.guards_intact());
      for (size_t i = 0; i < n; ++i)
        if (!same_bits(ga[i], x[i] > 0.f ? g[i] : 0.f)) {
          CHECK_MSG(false, "relu_backward reference at " << i);
          break;
        }
    }
}

// ---------------------------------------------------------------- exp, log1p

// Every stride-th float of [lo, hi] (by bit pattern, each sign), and the ends.
template <class F>
void sweep(float lo, float hi, uint32_t stride, F&& f) {
  for (float end : {lo, hi, 0.f, -0.f}) f(end);
  for (int sign = 0; sign < 2; ++sign) {
    const float lim = sign ? -lo : hi;
    if (lim <= 0) continue;
    const uint32_t top = vm::float_to_bits(lim);
    for (uint64_t b = 0; b <= top; b += stride) {
      const float v = vm::bits_to_float(static_cast<uint32_t>(b));
      f(sign ? -v : v);
    }
  }
}

#if defined(__x86_64__)
GV_AVX2_FMA void exp_lanes_avx2(const float* x, float* out) { _mm256_storeu_ps(out, avx2::exp8(_mm256_loadu_ps(x))); }
GV_AVX2_FMA void log1p_lanes_avx2(const float* x, float* out) { _mm256_storeu_ps(out, avx2::log1p8(_mm256_loadu_ps(x))); }
GV_AVX512F void exp_lanes_avx512(const float* x, float* out) { _mm512_storeu_ps(out, avx512::exp16(_mm512_loadu_ps(x))); }
GV_AVX512F void log1p_lanes_avx512(const float* x, float* out) {
  _mm512_storeu_ps(out, avx512::log1p16(_mm512_loadu_ps(x)));
}
#endif

void test_vmath() {
  const uint32_t stride = static_cast<uint32_t>(std::max(1.0, 397.0 / gvtest::stress_scale()));
  uint64_t worstExp = 0;
  size_t count = 0;
  std::vector<float> xs;
  sweep(tol::kExpLo, tol::kExpHi, stride, [&](float x) {
    const float got = vm::exp_approx(x);
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    const uint64_t u = gvtest::ulp_distance(got, want);
    worstExp = std::max(worstExp, u);
    ++count;
    xs.push_back(x);  // every point also goes through the SIMD lanes below
    if (u > tol::kExpMaxUlp) CHECK_MSG(false, "exp_approx(" << x << ") = " << got << " vs " << want << ": " << u << " ulp");
  });
  std::printf("exp_approx: %zu points of [%g, %g], max %llu ulp (tolerance %u)\n", count, tol::kExpLo, tol::kExpHi,
              static_cast<unsigned long long>(worstExp), tol::kExpMaxUlp);
  // Outside the range: 0 below, saturated above, never Inf or NaN.
  for (float x : {-87.5f, -100.f, -1e4f, -INFINITY}) CHECK(same_bits(vm::exp_approx(x), 0.f));
  for (float x : {88.5f, 1e4f, INFINITY}) CHECK(same_bits(vm::exp_approx(x), vm::exp_approx(tol::kExpHi)));
  CHECK(same_bits(vm::exp_approx(0.f), 1.f));
  // log1p over [0, 1].
  double worstLog = 0;
  sweep(0.f, 1.f, stride, [&](float t) {
    if (t < 0 || std::signbit(t)) return;
    const double want = std::log1p(static_cast<double>(t));
    const float got = vm::log1p_approx(t);
    const double rel = want == 0 ? std::fabs(got) : std::fabs(got - want) / want;
    worstLog = std::max(worstLog, rel);
    if (rel > tol::kLog1pRel) CHECK_MSG(false, "log1p_approx(" << t << ") = " << got << " vs " << want);
  });
  std::printf("log1p_approx: max relative error %.3g (tolerance %.3g)\n", worstLog, tol::kLog1pRel);
#if defined(__x86_64__)
  // The SIMD lanes give the scalar bits, inputs out of range and NaN included.
  for (float x : {-1e4f, -87.5f, 88.5f, 1e4f, -INFINITY, INFINITY, NAN, -0.f}) xs.push_back(x);
  while (xs.size() % 16) xs.push_back(1.f);
  std::vector<float> ts;
  for (float x : xs) ts.push_back(std::fabs(std::fmod(x, 1.f)));
  struct Lanes {
    const char* name;
    Isa isa;
    size_t width;
    void (*exp)(const float*, float*);
    void (*log1p)(const float*, float*);
  };
  const Lanes lanes[] = {{"avx2", Isa::Avx2, 8, exp_lanes_avx2, log1p_lanes_avx2},
                         {"avx512", Isa::Avx512, 16, exp_lanes_avx512, log1p_lanes_avx512}};
  for (const Lanes& l : lanes) {
    if (!isa_supported(l.isa)) continue;
    gvtest::Context ctx(std::string("vmath lanes ") + l.name);
    float out[16];
    for (size_t i = 0; i < xs.size(); i += l.width) {
      l.exp(xs.data() + i, out);
      for (size_t j = 0; j < l.width; ++j)
        if (!same_bits(out[j], vm::exp_approx(xs[i + j]))) CHECK_MSG(false, "exp lane differs at x=" << xs[i + j]);
      l.log1p(ts.data() + i, out);
      for (size_t j = 0; j < l.width; ++j)
        if (!same_bits(out[j], vm::log1p_approx(ts[i + j]))) CHECK_MSG(false, "log1p lane differs at t=" << ts[i + j]);
    }
  }
#endif
}

}  // namespace

int main() {
  const Table* ref = table_for(Isa::Scalar);
  CHECK(ref != nullptr);
  if (!ref) return gvtest::finish("test_model_kernels");
  test_vmath();
  for (Isa isa : {Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon}) {
    const Table* t = table_for(isa);
    if (!t) {
      std::printf("%-7s not supported by this CPU or build: not tested\n", isa_name(isa));
      continue;
    }
    gvtest::Timer timer;
    const int before = gvtest::failures().load();
    test_dot(*ref, *t);
    test_gemv(*ref, *t);
    test_gemm(*ref, *t);
    test_sparse(*ref, *t);
    test_rows(*ref, *t);
    test_nonzeros(*ref, *t);
    test_softmax(*ref, *t);
    test_logistic(*ref, *t);
    test_relu(*ref, *t);
    std::printf("%-7s %s in %.2f s\n", t->name, gvtest::failures().load() == before ? "ok" : "FAILED", timer.seconds());
  }
  std::printf("worst error / tolerance:\n");
  for (const auto& [what, r] : worst()) std::printf("  %-26s %.3f\n", what.c_str(), r);
  return gvtest::finish("test_model_kernels");
}
