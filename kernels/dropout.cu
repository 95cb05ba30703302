// Dropout in one pass: y = x * (keep ? scale : 0), mask = keep, from a counter-based generator.
//
// Random numbers: Philox4x32-10 (Salmon et al. 2011, Random123's constants and round order).
//   key     = (seed & 0xffffffff, seed >> 32)                       the 64-bit seed
//   counter = (group & 0xffffffff, group >> 32,
//              offset & 0xffffffff, offset >> 32)                   group = element_index / 4
// One Philox call gives the four 32-bit words of elements 4*group .. 4*group + 3 (word k for
// element 4*group + k); the uniform of a word u is (u >> 8) * 2^-24, in [0, 1). An element is
// kept when uniform < 1 - p, which the launcher passes as the exact integer test
// (u >> 8) < keep_threshold with keep_threshold = ceil((1 - p) * 2^24).
// gradflow.backends.fused.dropout.philox_reference reproduces these uniforms bit for bit.
//
// The product (not a select) keeps PyTorch's semantics: a dropped inf or NaN gives NaN.
#include "common.cuh"

#define GF_PHILOX_M0 0xD2511F53u
#define GF_PHILOX_M1 0xCD9E8D57u
#define GF_PHILOX_W0 0x9E3779B9u
#define GF_PHILOX_W1 0xBB67AE85u

struct gf_philox_words { unsigned int w[4]; };

__device__ __forceinline__ gf_philox_words gf_philox4x32_10(unsigned int c0, unsigned int c1, unsigned int c2,
                                                           unsigned int c3, unsigned int k0, unsigned int k1) {
#pragma unroll
    for (int round = 0; round < 10; ++round) {
        const unsigned long long product0 = (unsigned long long)GF_PHILOX_M0 * c0;
        const unsigned long long product1 = (unsigned long long)GF_PHILOX_M1 * c2;
        const unsigned int hi0 = (unsigned int)(product0 >> 32), lo0 = (unsigned int)product0;
        const unsigned int hi1 = (unsigned int)(product1 >> 32), lo1 = (unsigned int)product1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += GF_PHILOX_W0;  // the key bump after the last round is never used
        k1 += GF_PHILOX_W1;
    }
    gf_philox_words out;
    out.w[0] = c0;
    out.w[1] = c1;
    out.w[2] = c2;
    out.w[3] = c3;
    return out;
}

template <typename T, int N> struct alignas(sizeof(T) * N) gf_dropout_pack { T v[N]; };

// VEC4 = 1: x and y are aligned to 4 elements and mask to 4 bytes, so whole groups move with one
// load/store each (float4 for float); the last, partial group always goes element by element.
template <typename T, int VEC4>
__global__ void gf_dropout_forward(const T* __restrict__ x, T* __restrict__ y, unsigned char* __restrict__ mask,
                                   long long n, long long seed_low, long long seed_high, long long offset_low,
                                   long long offset_high, long long keep_threshold, double scale) {
    typedef typename gf_acc<T>::type A;
    const unsigned int k0 = (unsigned int)seed_low, k1 = (unsigned int)seed_high;
    const unsigned int c2 = (unsigned int)offset_low, c3 = (unsigned int)offset_high;
    const unsigned int threshold = (unsigned int)keep_threshold;  // in [0, 2^24]
    const A kept_scale = (A)scale;
    const long long groups = (n + 3) / 4;
    GF_GRID_STRIDE(group, groups) {
        const unsigned long long counter = (unsigned long long)group;
        const gf_philox_words words =
            gf_philox4x32_10((unsigned int)counter, (unsigned int)(counter >> 32), c2, c3, k0, k1);
        const long long first = group * 4;
        if (VEC4 && first + 4 <= n) {
            const gf_dropout_pack<T, 4> in = *reinterpret_cast<const gf_dropout_pack<T, 4>*>(x + first);
            gf_dropout_pack<T, 4> out;
            gf_dropout_pack<unsigned char, 4> keep;
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const bool kept = (words.w[k] >> 8) < threshold;
                keep.v[k] = kept ? 1 : 0;
                out.v[k] = gf_from_acc<T>((A)gf_to_float(in.v[k]) * (kept ? kept_scale : (A)0));
            }
            *reinterpret_cast<gf_dropout_pack<T, 4>*>(y + first) = out;
            *reinterpret_cast<gf_dropout_pack<unsigned char, 4>*>(mask + first) = keep;
        } else {
#pragma unroll
            for (int k = 0; k < 4; ++k) {
                const long long index = first + k;
                if (index < n) {
                    const bool kept = (words.w[k] >> 8) < threshold;
                    mask[index] = kept ? 1 : 0;
                    y[index] = gf_from_acc<T>((A)gf_to_float(x[index]) * (kept ? kept_scale : (A)0));
                }
            }
        }
    }
}
