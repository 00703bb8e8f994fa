// The part of a pooling window that lies inside the input, along one dimension.
#pragma once

#include <stdint.h>

namespace odt {

struct PoolWindow {
  int32_t start;     // input index of the window's first tap (may be negative: padding)
  int32_t from, to;  // taps [from, to) of the window fall inside the input
};

inline PoolWindow pool_window(int32_t out_index, int32_t stride, int32_t pad, int32_t filter,
                              int32_t in_size) {
  const int32_t start = out_index * stride - pad;
  return {start, start < 0 ? -start : 0, filter < in_size - start ? filter : in_size - start};
}

}  // namespace odt
