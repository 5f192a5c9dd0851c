// Direct calls of dispatched kernels (bypassing plans), so tests can check
// each ISA's kernels against NumPy and benchmarks can time them alone.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <pybind11/numpy.h>
#include <pybind11/stl.h>
#include <pybind11/pybind11.h>

#include "kernels/dispatch.h"
#include "runtime/thread_pool.h"

namespace py = pybind11;

namespace pyengine {

namespace {

using FArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

const KernelTable& table_named(const std::string& isa) {
  if (isa == "scalar") return kernels_for(Isa::Scalar);
  if (isa == "avx2") {
    if (!cpu_supports(Isa::Avx2)) throw std::invalid_argument("avx2 not supported here");
    return kernels_for(Isa::Avx2);
  }
  if (isa == "avx512") {
    if (!cpu_supports(Isa::Avx512)) throw std::invalid_argument("avx512 not supported here");
    return kernels_for(Isa::Avx512);
  }
  throw std::invalid_argument("unknown ISA " + isa);
}

#if defined(__x86_64__) || defined(__i386__)
// 12 independent FMA chains: enough to keep both FMA pipes busy despite the
// 4-cycle latency. Timed in short windows (~20 us) for `seconds`, keeping the
// best: on a shared machine most long windows include time the core spent on
// other processes. Compiled for AVX2/FMA only here, called only if the CPU has it.
__attribute__((target("avx2,fma"))) double fma_peak_gflops(double seconds) {
  __m256 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_set1_ps(static_cast<float>(i));
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  constexpr int kIters = 4000;
  double best = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kIters; ++r) {
#pragma GCC unroll 12
      for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    }
    const auto t1 = std::chrono::steady_clock::now();
    best = std::max(best, kIters * 12.0 * 16.0 / std::chrono::duration<double>(t1 - t0).count() / 1e9);
    if (std::chrono::duration<double>(t1 - start).count() >= seconds) break;
  }
  volatile float sink = 0;
  for (int i = 0; i < 12; ++i) sink = sink + _mm256_cvtss_f32(acc[i]);
  return best;
}

// The same with 16 independent 16-lane (zmm) FMA chains; called only if the
// CPU has AVX-512F.
__attribute__((target("avx512f"))) double fma_peak_gflops_avx512(double seconds) {
  __m512 acc[16];
  for (int i = 0; i < 16; ++i) acc[i] = _mm512_set1_ps(static_cast<float>(i));
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  constexpr int kIters = 3000;
  double best = 0;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < kIters; ++r) {
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    }
    const auto t1 = std::chrono::steady_clock::now();
    best = std::max(best, kIters * 16.0 * 32.0 / std::chrono::duration<double>(t1 - t0).count() / 1e9);
    if (std::chrono::duration<double>(t1 - start).count() >= seconds) break;
  }
  volatile float sink = 0;
  for (int i = 0; i < 16; ++i) sink = sink + _mm512_reduce_add_ps(acc[i]);
  return best;
}
#else
double fma_peak_gflops(double) { return 0.0; }
double fma_peak_gflops_avx512(double) { return 0.0; }
#endif

// CPU time of the calling thread: with one thread it leaves out the time the
// core spent on other processes, which wall-clock timings on a shared machine include.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

void bind_testing(py::module_& m) {
  // C = alpha*op(A)@op(B) + beta*C (+ bias per column, + bias_row per row) then
  // the activation; C is updated in place. packed=True goes through pack_b and
  // sgemm_packed, packed_a=True through pack_a and sgemm_packed_a (with the
  // packed B when packed); threads sizes the pool. Runs `repeat` times and returns the
  // seconds of each call (packing excluded), by `clock` "wall" or "thread_cpu".
  m.def("sgemm", [](const std::string& isa, bool ta, bool tb, float alpha, FArray a, FArray b, float beta,
                    py::array_t<float, py::array::c_style> c, py::object bias, const std::string& act,
                    float act_alpha, float act_beta, bool packed, int threads, py::object bias_row, int repeat,
                    const std::string& clock, bool packed_a) {
    const KernelTable& t = table_named(isa);
    if (a.ndim() != 2 || b.ndim() != 2 || c.ndim() != 2) throw std::invalid_argument("2-D arrays expected");
    GemmArgs g;
    g.trans_a = ta;
    g.trans_b = tb;
    g.M = ta ? a.shape(1) : a.shape(0);
    g.K = ta ? a.shape(0) : a.shape(1);
    g.N = tb ? b.shape(0) : b.shape(1);
    if ((tb ? b.shape(1) : b.shape(0)) != g.K || c.shape(0) != g.M || c.shape(1) != g.N)
      throw std::invalid_argument("shape mismatch");
    g.alpha = alpha;
    g.beta = beta;
    g.A = a.data();
    g.lda = a.shape(1);
    g.B = b.data();
    g.ldb = b.shape(1);
    g.C = c.mutable_data();
    g.ldc = g.N;
    FArray bias_arr;
    if (!bias.is_none()) {
      bias_arr = bias.cast<FArray>();
      if (bias_arr.size() != g.N) throw std::invalid_argument("bias must have N elements");
      g.bias_col = bias_arr.data();
    }
    FArray bias_row_arr;
    if (!bias_row.is_none()) {
      bias_row_arr = bias_row.cast<FArray>();
      if (bias_row_arr.size() != g.M) throw std::invalid_argument("bias_row must have M elements");
      g.bias_row = bias_row_arr.data();
    }
    g.act = Activation::from_name(act, act_alpha, act_beta);
    if (repeat < 1) throw std::invalid_argument("repeat must be >= 1");
    if (clock != "wall" && clock != "thread_cpu") throw std::invalid_argument("clock must be 'wall' or 'thread_cpu'");
    const bool thread_cpu = clock == "thread_cpu";
    if (thread_cpu && threads != 1) throw std::invalid_argument("clock='thread_cpu' needs threads=1");
    ThreadPool pool(threads);
    PackedB pb;
    if (packed) t.pack_b(g.B, g.ldb, g.trans_b, g.K, g.N, &pb);
    PackedA pa;
    if (packed_a) t.pack_a(g.A, g.lda, g.trans_a, g.M, g.K, &pa);
    std::vector<double> seconds;
    {
      py::gil_scoped_release release;
      for (int i = 0; i < repeat; ++i) {
        const double t0 = thread_cpu ? thread_cpu_seconds() : 0.0;
        auto w0 = std::chrono::steady_clock::now();
        if (packed_a) t.sgemm_packed_a(g, pa, packed ? &pb : nullptr, &pool);
        else if (packed) t.sgemm_packed(g, pb, &pool);
        else t.sgemm(g, &pool);
        seconds.push_back(thread_cpu ? thread_cpu_seconds() - t0
                                     : std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count());
      }
    }
    return seconds;
  }, py::arg("isa"), py::arg("trans_a"), py::arg("trans_b"), py::arg("alpha"), py::arg("a"), py::arg("b"),
     py::arg("beta"), py::arg("c"), py::arg("bias") = py::none(), py::arg("activation") = "",
     py::arg("act_alpha") = 0.f, py::arg("act_beta") = 0.f, py::arg("packed") = false, py::arg("threads") = 1,
     py::arg("bias_row") = py::none(), py::arg("repeat") = 1, py::arg("clock") = "wall",
     py::arg("packed_a") = false);

  // Measured single-core FMA throughput in GFLOP/s (the benchmarks' peak).
  // isa "avx2" (8-lane FMAs) or "avx512" (16-lane FMAs).
  m.def("fma_peak_gflops", [](double seconds, const std::string& isa) {
    if (isa == "avx512") {
      if (!cpu_supports(Isa::Avx512)) throw std::invalid_argument("avx512 not supported here");
      py::gil_scoped_release release;
      return fma_peak_gflops_avx512(seconds);
    }
    if (isa != "avx2") throw std::invalid_argument("fma_peak_gflops: isa must be avx2 or avx512, got " + isa);
    if (!cpu_supports(Isa::Avx2)) throw std::invalid_argument("avx2 not supported here");
    py::gil_scoped_release release;
    return fma_peak_gflops(seconds);
  }, py::arg("seconds") = 0.2, py::arg("isa") = "avx2");

  // y = f(x) for one of the vector math kernels.
  m.def("vmath", [](const std::string& isa, const std::string& fn, FArray x) {
    const KernelTable& t = table_named(isa);
    UnaryFn f = fn == "exp" ? t.exp : fn == "tanh" ? t.tanh : fn == "sigmoid" ? t.sigmoid
              : fn == "erf" ? t.erf : fn == "log" ? t.log : nullptr;
    if (!f) throw std::invalid_argument("unknown vector function " + fn);
    py::array_t<float> y(x.size());
    f(x.data(), y.mutable_data(), x.size());
    return y;
  });

  // One of the contiguous float reductions ("sum", "sumsq", "max", "min").
  m.def("vreduce", [](const std::string& isa, const std::string& fn, FArray x) {
    const KernelTable& t = table_named(isa);
    ReduceFn f = fn == "sum" ? t.reduce_sum : fn == "sumsq" ? t.reduce_sumsq : fn == "max" ? t.reduce_max
               : fn == "min" ? t.reduce_min : nullptr;
    if (!f) throw std::invalid_argument("unknown reduction " + fn);
    return f(x.data(), x.size());
  });

  // y = exp(x - shift), returns (y, sum(y)).
  m.def("exp_shift_sum", [](const std::string& isa, FArray x, float shift) {
    const KernelTable& t = table_named(isa);
    py::array_t<float> y(x.size());
    float s = t.exp_shift_sum(x.data(), shift, y.mutable_data(), x.size());
    return py::make_tuple(y, s);
  });

  m.def("activation", [](const std::string& isa, const std::string& act, float alpha, float beta, FArray x) {
    const KernelTable& t = table_named(isa);
    py::array_t<float> y(x.size());
    t.activation(x.data(), y.mutable_data(), x.size(), Activation::from_name(act, alpha, beta));
    return y;
  });
}

}  // namespace pyengine
