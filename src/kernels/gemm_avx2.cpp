// The avx2 level's kernel table (gemm_avx2_*.cpp hold the kernels).
#include "kernels/gemm.h"

namespace thinkmesh::kernels {

GemmKernel find_gemm_avx2_q32(TensorType w);
GemmKernel find_gemm_avx2_q41(TensorType w);
GemmKernel find_gemm_avx2_kq(TensorType w);
GemmKernel find_gemm_avx2_f(TensorType w);

GemmKernel find_gemm_avx2(TensorType w) {
  if (GemmKernel k = find_gemm_avx2_q32(w)) return k;
  if (GemmKernel k = find_gemm_avx2_q41(w)) return k;
  if (GemmKernel k = find_gemm_avx2_kq(w)) return k;
  return find_gemm_avx2_f(w);
}

}  // namespace thinkmesh::kernels
