// Binding for the engine's token sampler (CPU). engine/sampler.py applies penalties and masks
// and draws u from the request's own generator; these checks make the native entry safe alone.
#include "../cpu/sample.h"

#include "common.h"

namespace infercore {

void register_sample(py::module_& m) {
  m.def(
      "sample_token",
      [](const py::array& logits, double temperature, int64_t top_k, double top_p, double min_p, double u) {
        check_array(logits, "logits", 1, 4, false);
        IC_CHECK_TYPE(logits.dtype().kind() == 'f', "logits: expected float32");
        SampleArgs a;
        a.logits = static_cast<const float*>(logits.data());
        a.vocab = logits.shape(0);
        a.temperature = temperature;
        a.top_k = top_k;
        a.top_p = top_p;
        a.min_p = min_p;
        a.u = u;
        py::gil_scoped_release nogil;
        return sample_token(a);
      },
      py::arg("logits"), py::arg("temperature"), py::arg("top_k"), py::arg("top_p"), py::arg("min_p"),
      py::arg("u"),
      "The token that temperature / top-k (0 = off) / top-p / min-p sampling picks from one float32 "
      "logits row for the uniform draw u in [0, 1): the first token, in (logit desc, id asc) order "
      "over the kept set, whose cumulative probability exceeds u. -inf logits are masked out; NaN, "
      "+inf or an all -inf row raise ValueError.");
}

}  // namespace infercore
