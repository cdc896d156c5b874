// Built-in models: forward, loss and mean gradient over a batch of rows, in
// native code on the kernel table. A model knows its tensors (names, shapes,
// initialisation, as the README names them) and works on plain pointers, one
// per tensor in that order: a trainer's private replica and gradient buffer,
// or a snapshot's arrays for evaluate(). Nothing here touches the store.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../data/dataset.h"
#include "../status.h"
#include "../store.h"

namespace gv::model {

enum class Kind { Linear, Logistic, Softmax, Svm, Mlp, Mf };
const char* kind_name(Kind k);
bool parse_kind(const std::string& s, Kind* out);
// The same as a Status: an unknown kind is ERR_CONFIG naming the field 'model' and the value.
Status parse_model_kind(const std::string& s, Kind* out);

struct ModelSpec {
  Kind kind = Kind::Softmax;
  std::vector<uint32_t> hidden{128};  // mlp: hidden layer widths
  uint32_t rank = 10;                 // mf
  bool biases = true;                 // mf: bu, bi
  float l2 = 0.f;                     // mf: L2 on the factor rows a rating touches (the classic per-rating term)
};

// The data's shape as a model needs it.
struct Dims {
  uint64_t features = 0, classes = 0, users = 0, items = 0;
};

// Rows of one tensor a sparse gradient touched: the gradient is zero outside
// rows[] (each `width` floats). dense: the whole tensor was written.
struct Touched {
  bool dense = true;
  size_t width = 1;
  std::vector<uint32_t> rows;  // ascending, unique
};

struct EvalSums {
  double loss = 0;      // sum of per-row losses
  double sqErr = 0;     // regression: sum of squared errors
  uint64_t correct = 0; // classification
  uint64_t rows = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  Kind kind() const { return spec_.kind; }
  const ModelSpec& spec() const { return spec_; }
  const Dims& dims() const { return dims_; }
  // Names, shapes and initialisation, in the order of the pointer arrays.
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  bool regression() const { return spec_.kind == Kind::Linear || spec_.kind == Kind::Mf; }
  // Whether grad() writes a row-sparse gradient for this data and batch
  // size (see grad()): always for sparse data and mf, and for dense data in
  // batches of one where the model trains on a row's nonzeros.
  virtual bool sparse_gradient(const data::Dataset& d, size_t batch) const = 0;
  // The rows of each tensor that grad() will read for this batch (a
  // trainer copies only those from the store): sparse data reads the rows of
  // its features, mf the rows of its users and items. Default: everything.
  // rowSparse: sparse_gradient(d, batch size), as for grad().
  virtual void rows_needed(const data::Dataset& d, const uint32_t* rows, size_t n, bool rowSparse, Touched* need) const;
  // Floats of per-thread workspace for batches of up to `batch` rows.
  virtual size_t workspace_floats(const data::Dataset& d, size_t batch) const = 0;

  // Mean gradient of the loss over rows[0..n) at parameters p, written into
  // g (one pointer per tensor); returns the sum of the n losses.
  // rowSparse = sparse_gradient(d, batch size) of the run. Dense gradients
  // overwrite g. Sparse ones need g zero on entry, write only the rows listed
  // in touched[t] and leave the caller to zero those rows again after use.
  // ws: workspace_floats(d, n) floats.
  virtual double grad(const float* const* p, const data::Dataset& d, const uint32_t* rows, size_t n, float* const* g,
                      float* ws, Touched* touched, bool rowSparse) const = 0;

  // Adds the loss (and correct count or squared error) of rows [begin, end).
  virtual void eval(const float* const* p, const data::Dataset& d, uint64_t begin, uint64_t end, float* ws,
                    EvalSums* out) const = 0;
  // The model's raw output for rows [begin, end), output_width() floats per
  // row into out: z = x.w + b (linear, logistic, svm), the logits (softmax,
  // mlp), the rating (mf). Labels are not read. ws as for eval().
  virtual void outputs(const float* const* p, const data::Dataset& d, uint64_t begin, uint64_t end, float* ws,
                       float* out) const = 0;
  size_t output_width() const {
    return spec_.kind == Kind::Softmax || spec_.kind == Kind::Mlp ? static_cast<size_t>(dims_.classes) : 1;
  }
  // Rows eval() handles per call with workspace_floats(d, kEvalBlock) floats.
  static constexpr size_t kEvalBlock = 256;

  // Builds the model for data of shape dims. Errors: Config (bad spec).
  static Status create(const ModelSpec& spec, const Dims& dims, std::unique_ptr<Model>* out);
  // Checks that the data fits this model (kind of data, labels, shape);
  // errors name the field.
  Status check_data(const data::Dataset& d) const;
  // The dims a model needs from a data set.
  static Dims dims_of(const data::Dataset& d);
  // Dims recovered from tensor shapes (for evaluate() on a snapshot), by
  // name; errors name the missing or mis-shaped tensor.
  static Status from_shapes(const ModelSpec& spec, const std::vector<std::string>& names,
                            const std::vector<std::vector<int64_t>>& shapes, std::unique_ptr<Model>* out,
                            std::vector<int>* order);

 protected:
  Model(const ModelSpec& s, const Dims& d) : spec_(s), dims_(d) {}
  ModelSpec spec_;
  Dims dims_;
  std::vector<TensorSpec> tensors_;
};

// A model as a store records it (store.h ModelInfo): its kind, the options
// of its kind and the data shape it was made for. spec_of() is the way back
// (kind, options and shape); both expect a known info.
ModelInfo info_of(const Model& m);
ModelInfo info_of(const ModelSpec& spec, const Dims& dims);
Status spec_of(const ModelInfo& info, ModelSpec* spec, Dims* dims);

// evaluate(): the model at parameters p over all of d, in blocks, on the
// calling thread.
Status evaluate(const Model& m, const float* const* p, const data::Dataset& d, EvalSums* out);

// evaluate() as the facade reports it: the means over the rows (NaN when
// there are none); rmse for regression models, accuracy for the others (the
// other one NaN).
struct Evaluation {
  uint64_t rows = 0;
  double loss = 0;
  bool regression = false;
  double accuracy = 0;
  double rmse = 0;
};
Status evaluate(const Model& m, const float* const* p, const data::Dataset& d, Evaluation* out);

// predict(): what a model says about each row of d (labels unread).
//   softmax, mlp: values = probabilities [rows, classes], classes = argmax
//   logistic: values = P(y = +1), classes 0/1, labels ±1
//   svm: values = the margin x.w + b, classes 0/1, labels ±1
//   linear: values; mf: values = the ratings of the (user, item) pairs
struct Prediction {
  uint64_t rows = 0;
  size_t width = 1;             // values per row
  unsigned threads = 1;         // threads it ran on
  std::vector<float> values;    // rows * width
  std::vector<int32_t> classes; // classifiers: per row
  std::vector<float> labels;    // logistic, svm: ±1 per row
};
// Checks that rows of d can be fed to m: feature rows of the model's width
// (sparse rows may use fewer features), or (user, item) pairs within its
// users and items for mf. ShapeError names the tensor and both shapes.
Status check_input(const Model& m, const data::Dataset& d);
// threads: 0 = as many as the machine has for large inputs (small ones run
// on the calling thread).
Status predict(const Model& m, const float* const* p, const data::Dataset& d, Prediction* out, unsigned threads = 0);

// A snapshot's tensor for evaluate(): its name, shape and size values.
struct NamedArray {
  std::string name;
  std::vector<int64_t> shape;
  const float* data = nullptr;
  size_t size = 0;
};
// The model of tensors given by name, in any order (Model::from_shapes), and
// their data in the model's order. A tensor whose values do not fill its
// shape is ERR_SHAPE.
Status from_tensors(const ModelSpec& spec, const std::vector<NamedArray>& tensors, std::unique_ptr<Model>* out,
                    std::vector<const float*>* p);
// evaluate() of a model given its tensors by name, in any order (the model
// comes from their shapes: Model::from_shapes). A tensor whose values do not
// fill its shape is ERR_SHAPE.
Status evaluate(const ModelSpec& spec, const std::vector<NamedArray>& tensors, const data::Dataset& d, Evaluation* out);
// predict() of a model given its tensors by name, as evaluate() above.
Status predict(const ModelSpec& spec, const std::vector<NamedArray>& tensors, const data::Dataset& d, Prediction* out,
               unsigned threads = 0);

}  // namespace gv::model
