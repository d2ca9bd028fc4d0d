// Instruction-set levels of the matrix kernels, detected once from CPUID and selectable with
// the THINKMESH_ISA environment variable (scalar, avx2, avx512, amx) for tests and comparisons.
//
//   level    needs (x86-64)                                   kernels
//   scalar   nothing                                          the reference (vec_dot_scalar.cpp)
//   avx2     AVX2, FMA, F16C                                  256-bit (gemm_avx2_*.cpp)
//   avx512   AVX-512 F/BW/VL/DQ + VNNI, FMA, F16C (BF16 used  512-bit, vpdpbusd (gemm_avx512_*.cpp)
//            when present)
//   amx      the above + AMX-TILE/INT8                        avx512 kernels for now (no AMX
//                                                             tiles yet: see docs/kernels.md)
//   neon     ARM64 Advanced SIMD + dotprod                    (gemm_neon.cpp)
//
// A forced level the CPU lacks is an Error(unsupported) naming the level and the missing
// feature, raised by active_isa() -- never a silent fallback.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace thinkmesh::kernels {

enum class Isa : uint8_t { scalar, avx2, avx512, amx, neon };

std::string_view isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);

// What this CPU offers (CPUID / HWCAP), independent of THINKMESH_ISA.
struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512vnni = false, avx512bf16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool neon = false, dotprod = false;
};
const CpuFeatures& cpu_features();

// True when this CPU can run kernels of `isa`; otherwise `why` (when given) names what is missing.
bool isa_supported(Isa isa, std::string* why = nullptr);
// False for levels whose kernels have never been run against the reference on real hardware
// (today: avx512 and amx); best_isa() skips them, THINKMESH_ISA may still force them.
bool isa_verified(Isa isa);
// The best verified level this CPU supports.
Isa best_isa();
// The level the kernels use: THINKMESH_ISA when set (Error(unsupported) if this CPU cannot run
// it, Error(invalid_argument) for an unknown name), else best_isa(). Read once; set_active_isa
// overrides it (tests, `thinkmesh bench --isa`).
Isa active_isa();
// Forces a level from now on (Error(unsupported) when the CPU cannot run it). Not thread-safe
// with concurrent matrix products: call it between them.
void set_active_isa(Isa isa);

}  // namespace thinkmesh::kernels
