// Data sets the C++ tests share.
#pragma once
#include <cstdint>

#include "core/data/dataset.h"
#include "core/random.h"

namespace gvtest {

// Ratings (user, item, y) of a low-rank pattern plus noise, seeded.
inline gv::data::Dataset ratings(uint64_t rows, uint64_t users, uint64_t items, uint64_t seed) {
  gv::data::Dataset d;
  d.kind = gv::data::Kind::Ratings;
  d.rows = rows;
  d.users = users;
  d.items = items;
  d.features = users + items;
  gv::SplitMix64 r(seed);
  for (uint64_t k = 0; k < rows; ++k) {
    const uint32_t u = static_cast<uint32_t>(r.next() % users), i = static_cast<uint32_t>(r.next() % items);
    d.user.push_back(u);
    d.item.push_back(i);
    d.labels.push_back(static_cast<float>(((u % 5) * (i % 7)) / 10.0 + 0.1 * r.normal()));
  }
  return d;
}

}  // namespace gvtest
