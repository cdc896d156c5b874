// The model families, one file each (linear.cpp, softmax.cpp, mlp.cpp,
// mf.cpp): model.cpp checks a spec, then makes its family here.
#pragma once
#include <memory>

#include "model.h"

namespace gv::model::detail {

std::unique_ptr<Model> make_linear(const ModelSpec& spec, const Dims& dims);  // linear, logistic, svm
std::unique_ptr<Model> make_softmax(const ModelSpec& spec, const Dims& dims);
std::unique_ptr<Model> make_mlp(const ModelSpec& spec, const Dims& dims);
std::unique_ptr<Model> make_mf(const ModelSpec& spec, const Dims& dims);

}  // namespace gv::model::detail
