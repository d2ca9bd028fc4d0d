// The neon level's kernel table (gemm_neon_*.cpp hold the kernels; ARM64 with dotprod only).
#include "kernels/gemm.h"

namespace thinkmesh::kernels {

GemmKernel find_gemm_neon_q32(TensorType w);
GemmKernel find_gemm_neon_kq(TensorType w);
GemmKernel find_gemm_neon_f(TensorType w);

GemmKernel find_gemm_neon(TensorType w) {
  if (GemmKernel k = find_gemm_neon_q32(w)) return k;
  if (GemmKernel k = find_gemm_neon_kq(w)) return k;
  return find_gemm_neon_f(w);
}

}  // namespace thinkmesh::kernels
