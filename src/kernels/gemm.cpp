// Kernel selection and the scalar reference product (see gemm.h).
#include "kernels/gemm.h"

#include "kernels/vec_dot.h"

namespace thinkmesh::kernels {

void gemm_reference(const GemmProblem& p, int64_t r0, int64_t r1) {
  for (int64_t t = 0; t < p.n_tokens; ++t) {
    const uint8_t* a = p.act + static_cast<size_t>(t) * p.act_stride;
    float* yt = p.y + t * p.y_stride;
    for (int64_t r = r0; r < r1; ++r) {
      yt[r] = vec_dot(p.w_type, p.n, p.w + static_cast<size_t>(r) * p.w_stride, a);
    }
  }
}

void prepare_activations(Isa isa, TensorType act_type, const float* x, void* dst, int64_t n) {
  // NaN inputs: the SIMD conversions follow the hardware, the reference ggml's scalar code;
  // the bytes may differ only there.
  (void)row_bytes(act_type, n);  // validates n against the block size
#if defined(THINKMESH_HAVE_AVX2_KERNELS)
  if ((isa == Isa::avx2 || isa == Isa::avx512 || isa == Isa::amx) &&
      prepare_activations_avx2(act_type, x, dst, n))
    return;
#else
  (void)isa;
#endif
  quantize_activations(act_type, x, dst, n);
}

GemmKernel find_gemm(Isa isa, TensorType w) {
  switch (isa) {
    case Isa::scalar:
      return has_vec_dot(w) ? &gemm_reference : nullptr;
    case Isa::avx2:
      return find_gemm_avx2(w);
    case Isa::avx512:
    case Isa::amx:
      return find_gemm_avx512(w);  // no AMX tile kernels yet
    case Isa::neon:
      return find_gemm_neon(w);
  }
  return nullptr;
}

GemmKernel select_gemm(Isa isa, TensorType w) {
  static constexpr Isa kOrder[] = {Isa::amx, Isa::avx512, Isa::avx2, Isa::scalar};
  if (isa == Isa::neon) {
    if (GemmKernel k = find_gemm(Isa::neon, w)) return k;
    return find_gemm(Isa::scalar, w);
  }
  bool reached = false;
  for (Isa level : kOrder) {
    reached = reached || level == isa;
    if (!reached) continue;
    if (GemmKernel k = find_gemm(level, w)) return k;
  }
  return nullptr;
}

}  // namespace thinkmesh::kernels
