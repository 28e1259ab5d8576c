/* kernels.c - choosing the kernel set for this CPU (see kernels.h). */
#include "kernels.h"

#include <float.h>
#include <stdbool.h>
#include <string.h>

/* The bit-for-bit contract of kernels.h holds only where float and double
 * arithmetic rounds to float and double (32-bit x86 needs -msse2
 * -mfpmath=sse, which CMakeLists.txt adds). */
#if !defined(FLT_EVAL_METHOD) || FLT_EVAL_METHOD != 0
#error "gpt2 needs FLT_EVAL_METHOD 0 (on 32-bit x86: -msse2 -mfpmath=sse)"
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

/* What the CPU offers and the operating system saves on a context switch:
 * CPUID says what the silicon has, XGETBV whether the OS preserves the
 * registers (AVX needs the YMM state, AVX-512 also the opmask and ZMM
 * state).  Both are needed before a single instruction may run. */
typedef struct {
    bool avx2, avxvnni, avx512;
} CpuFeatures;

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static CpuFeatures cpu_features(void) {
    CpuFeatures f = {false, false, false};
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = xgetbv0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6, zmm_state = (xcr0 & 0xE6) == 0xE6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const bool avx2 = b >> 5 & 1, avx512f = b >> 16 & 1, avx512bw = b >> 30 & 1, avx512vl = b >> 31 & 1;
    const bool avx512vnni = c >> 11 & 1;
    f.avx2 = ymm_state && avx2 && fma && f16c;
    f.avx512 = f.avx2 && zmm_state && avx512f && avx512bw && avx512vl && avx512vnni;
    /* AVX-VNNI (the VEX-encoded vpdpbusd): leaf 7, subleaf 1, EAX bit 4. */
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) f.avxvnni = f.avx2 && (a >> 4 & 1);
    return f;
}

/* AMD's and Hygon's CPUs, by the vendor string of CPUID leaf 0. */
static bool cpu_is_amd(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
    char vendor[12];
    memcpy(vendor, &b, 4);
    memcpy(vendor + 4, &d, 4);
    memcpy(vendor + 8, &c, 4);
    return memcmp(vendor, "AuthenticAMD", 12) == 0 || memcmp(vendor, "HygonGenuine", 12) == 0;
}

/* Zen 4 is the one family 25 (0x19) design with AVX-512 (Zen 3's lack it):
 * CPUID leaf 1 gives the family, cpu_features() the AVX-512 the avx512 set
 * needs (where the hint was measured). */
static bool cpu_is_zen4(void) {
    unsigned a, b, c, d;
    if (!cpu_is_amd() || !__get_cpuid(1, &a, &b, &c, &d)) return false;
    const unsigned base = a >> 8 & 0xF, family = base == 0xF ? base + (a >> 20 & 0xFF) : base;
    return family == 0x19 && cpu_features().avx512;
}

static StreamHints cpu_stream_hints(void) {
    if (!cpu_is_amd()) return (StreamHints){STREAM_L2, STREAM_L2};
    return (StreamHints){STREAM_NONTEMPORAL, cpu_is_zen4() ? STREAM_NONE : STREAM_NONTEMPORAL};
}

static bool cpu_has(const char *set) {
    CpuFeatures f = cpu_features();
    if (strcmp(set, "avx512") == 0) return f.avx512;
    if (strcmp(set, "avxvnni") == 0) return f.avxvnni;
    if (strcmp(set, "avx2") == 0) return f.avx2;
    return false;
}
#else
static StreamHints cpu_stream_hints(void) { return (StreamHints){STREAM_NONTEMPORAL, STREAM_NONTEMPORAL}; }

static bool cpu_has(const char *set) {
    (void)set;
    return false;
}
#endif

const KernelSet *gpt2_kernels_select(const char *force) {
    const KernelSet *sets[] = {&gpt2_kernels_avx512, &gpt2_kernels_avxvnni, &gpt2_kernels_avx2, &gpt2_kernels_portable};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        const KernelSet *k = sets[i];
        if (!k->name) continue; /* not compiled in */
        if (force && strcmp(force, k->name) != 0) continue;
        if (k != &gpt2_kernels_portable && !cpu_has(k->name)) continue;
        return k;
    }
    return NULL;
}

bool gpt2_kernels_stream_hints(const char *force, StreamHints *hints) {
    static const char *const names[] = {[STREAM_NONTEMPORAL] = "nta", [STREAM_L2] = "l2", [STREAM_NONE] = "none"};
    if (!force) {
        *hints = cpu_stream_hints();
        return true;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (strcmp(force, names[i]) == 0) {
            *hints = (StreamHints){(StreamHint)i, (StreamHint)i};
            return true;
        }
    return false;
}

const char *gpt2_kernels_stream_hints_name(StreamHints hints) {
    static const char *const names[3][3] = {
        [STREAM_NONTEMPORAL] = {"nta", "nta, l2 for one row", "nta, none for one row"},
        [STREAM_L2] = {"l2, nta for one row", "l2", "l2, none for one row"},
        [STREAM_NONE] = {"none, nta for one row", "none, l2 for one row", "none"},
    };
    return names[hints.common][hints.one_row];
}
