// Host tool: runs the baked model on a file of inputs and writes the outputs, so Python can
// compare the C++ runtime with the simulator and tflite-micro (model_prep/check.py).
//   run_model INPUTS OUTPUTS   (raw bytes: N * input_bytes in, N * output_bytes out)
#include <stdio.h>
#include <string.h>

#include "model.h"

namespace odt {
extern const ModelDesc kModel;
}  // namespace odt

int main(int argc, char** argv) {
  using odt::kModel;
  if (argc != 3) {
    fprintf(stderr, "usage: %s INPUTS OUTPUTS (raw: N x %ld input bytes -> N x %ld output bytes)\n", argv[0],
            static_cast<long>(kModel.input_bytes), static_cast<long>(kModel.output_bytes));
    return 2;
  }
  FILE* in = fopen(argv[1], "rb");
  FILE* out = fopen(argv[2], "wb");
  if (!in || !out) {
    fprintf(stderr, "run_model: cannot open %s\n", !in ? argv[1] : argv[2]);
    return 2;
  }
  int8_t* input = kModel.arena + kModel.input_offset;
  const size_t n_in = static_cast<size_t>(kModel.input_bytes), n_out = static_cast<size_t>(kModel.output_bytes);
  long samples = 0;
  for (;; ++samples) {
    const size_t got = fread(input, 1, n_in, in);
    if (got == 0 && feof(in)) break;
    if (got != n_in) {
      fprintf(stderr, "run_model: %s ends inside sample %ld (%zu of %zu bytes)\n", argv[1], samples, got, n_in);
      return 1;
    }
    odt::invoke(kModel);
    fwrite(kModel.arena + kModel.output_offset, 1, n_out, out);
  }
  fclose(in);
  fclose(out);
  return 0;
}
