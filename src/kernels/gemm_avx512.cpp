// The avx512 level's kernel table (gemm_avx512_*.cpp hold the kernels).
#include "kernels/gemm.h"

namespace thinkmesh::kernels {

GemmKernel find_gemm_avx512_q32(TensorType w);
GemmKernel find_gemm_avx512_kq(TensorType w);
GemmKernel find_gemm_avx512_f(TensorType w);

GemmKernel find_gemm_avx512(TensorType w) {
#if defined(THINKMESH_HAVE_AVX512_KERNELS)
  if (GemmKernel k = find_gemm_avx512_q32(w)) return k;
  if (GemmKernel k = find_gemm_avx512_kq(w)) return k;
  return find_gemm_avx512_f(w);
#else
  (void)w;
  return nullptr;
#endif
}

// Levels not built on this target (filled in by their own files when they are).
#if !defined(THINKMESH_HAVE_AVX2_KERNELS)
GemmKernel find_gemm_avx2(TensorType) {
  return nullptr;
}
#endif
#if !defined(THINKMESH_HAVE_NEON_KERNELS)
GemmKernel find_gemm_neon(TensorType) {
  return nullptr;
}
#endif

}  // namespace thinkmesh::kernels
