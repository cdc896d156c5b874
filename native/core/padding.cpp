// clear_padding() (store.h): outside store.cpp, as it needs only the layout.
#include <cstring>

#include "store.h"

namespace gv {

void clear_padding(const Store& s, float* out) {
  for (size_t i = 0; i < s.tensor_count(); ++i) {
    const TensorInfo& t = s.tensor(i);
    const size_t end = i + 1 < s.tensor_count() ? s.tensor(i + 1).offset : s.padded_floats();
    std::memset(out + t.offset + t.size, 0, (end - t.offset - t.size) * sizeof(float));
  }
}

}  // namespace gv
