// Binding for the engine's token sampler (CPU). engine/sampler.py applies penalties and masks
// and draws u from the request's own generator; these checks make the native entry safe alone.
#include "../cpu/sample.h"

#include <limits>
#include <string>

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
  m.def(
      "sample_logprobs",
      [](const py::array& logits, int64_t n) {
        check_array(logits, "logits", 1, 4, false);
        IC_CHECK_TYPE(logits.dtype().kind() == 'f', "logits: expected float32");
        const int64_t vocab = logits.shape(0);
        IC_CHECK_VALUE(n >= 0 && n <= vocab, "n: expected 0 <= n <= " + std::to_string(vocab) + ", got " +
                                                 std::to_string(n));
        py::array_t<int32_t> top(n);
        float mx = 0.f;
        double log_total = std::numeric_limits<double>::quiet_NaN();
        bool finite;
        {
          py::gil_scoped_release nogil;
          finite = sample_logprobs(static_cast<const float*>(logits.data()), vocab, n, &mx, &log_total,
                                   top.mutable_data());
        }
        if (!finite) top = py::array_t<int32_t>(0);
        return py::make_tuple(mx, log_total, top);
      },
      py::arg("logits"), py::arg("n"),
      "(max, log_total, top) of one float32 logits row: log_total = log(sum exp(x - max)), top = the "
      "n largest logits' ids (logit desc, id asc). When max is +-inf, log_total is NaN and top empty.");
}

}  // namespace infercore
