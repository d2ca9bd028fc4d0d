// CPU feature detection and the active kernel level (see isa.h).
#include "kernels/isa.h"

#include <atomic>
#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "thinkmesh/error.h"

namespace thinkmesh::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// XCR0 bits the OS must enable before AVX/AVX-512/AMX registers may be used.
uint64_t read_xcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;                 // XMM + YMM state
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;  // opmask + ZMM state
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;         // XTILECFG + XTILEDATA
  f.fma = os_avx && ((c >> 12) & 1);
  f.f16c = os_avx && ((c >> 29) & 1);
  unsigned b7 = 0, c7 = 0, d7 = 0, a7 = 0;
  __cpuid_count(7, 0, a7, b7, c7, d7);
  f.avx2 = os_avx && ((b7 >> 5) & 1);
  f.avx512f = os_avx512 && ((b7 >> 16) & 1);
  f.avx512dq = os_avx512 && ((b7 >> 17) & 1);
  f.avx512bw = os_avx512 && ((b7 >> 30) & 1);
  f.avx512vl = os_avx512 && ((b7 >> 31) & 1);
  f.avx512vnni = os_avx512 && ((c7 >> 11) & 1);
  f.amx_bf16 = os_amx && ((d7 >> 22) & 1);
  f.amx_tile = os_amx && ((d7 >> 24) & 1);
  f.amx_int8 = os_amx && ((d7 >> 25) & 1);
  unsigned a71 = 0, b71 = 0, c71 = 0, d71 = 0;
  __cpuid_count(7, 1, a71, b71, c71, d71);
  f.avx_vnni = os_avx && ((a71 >> 4) & 1);
  f.avx512bf16 = os_avx512 && ((a71 >> 5) & 1);
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on ARMv8-A
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  f.dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
#endif
  return f;
}

Isa read_environment() {
  const char* env = std::getenv("THINKMESH_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  const std::optional<Isa> isa = parse_isa(env);
  if (!isa) {
    throw Error(ErrorKind::invalid_argument,
                std::string("THINKMESH_ISA='") + env +
                    "' is not a kernel level (scalar, avx2, avx512, amx, neon)");
  }
  std::string why;
  if (!isa_supported(*isa, &why)) {
    throw Error(ErrorKind::unsupported, std::string("THINKMESH_ISA=") + env + ": " + why);
  }
  return *isa;
}

std::atomic<int> g_forced{-1};  // -1: not forced by set_active_isa

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar:
      return "scalar";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
    case Isa::amx:
      return "amx";
    case Isa::neon:
      return "neon";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512, Isa::amx, Isa::neon}) {
    if (name == isa_name(i)) return i;
  }
  return std::nullopt;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa, std::string* why) {
  const CpuFeatures& f = cpu_features();
  auto missing = [&](const char* what) {
    if (why)
      *why = std::string("this CPU lacks ") + what + " (needed by the " +
             std::string(isa_name(isa)) + " kernels)";
    return false;
  };
  switch (isa) {
    case Isa::scalar:
      return true;
    case Isa::avx2:
      if (!f.avx2) return missing("AVX2");
      if (!f.fma) return missing("FMA");
      if (!f.f16c) return missing("F16C");
      return true;
    case Isa::avx512:
      if (!isa_supported(Isa::avx2, why)) return false;
      if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq))
        return missing("AVX-512 F/BW/VL/DQ");
      if (!f.avx512vnni) return missing("AVX-512 VNNI");
      return true;
    case Isa::amx:
      if (!isa_supported(Isa::avx512, why)) return false;
      if (!(f.amx_tile && f.amx_int8)) return missing("AMX-TILE/AMX-INT8");
      return true;
    case Isa::neon:
      if (!f.neon) return missing("ARM64 NEON");
      if (!f.dotprod) return missing("the ARMv8.2 dot-product extension");
      return true;
  }
  return false;
}

bool isa_verified(Isa isa) {
  // The avx512/amx kernels were written on a machine without AVX-512 and have not run yet:
  // they are used only when asked for (THINKMESH_ISA, bench --isa) until a session on an
  // AVX-512 machine has passed tests/unit/test_gemm.cpp and the golden tests with them.
  return isa != Isa::avx512 && isa != Isa::amx;
}

Isa best_isa() {
  for (Isa i : {Isa::amx, Isa::avx512, Isa::avx2, Isa::neon}) {
    if (isa_supported(i) && isa_verified(i)) return i;
  }
  return Isa::scalar;
}

Isa active_isa() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<Isa>(forced);
  static const Isa from_env = read_environment();
  return from_env;
}

void set_active_isa(Isa isa) {
  std::string why;
  if (!isa_supported(isa, &why)) throw Error(ErrorKind::unsupported, why);
  g_forced.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace thinkmesh::kernels
