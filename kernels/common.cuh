// Shared by every kernels/*.cu file: storage types, conversions to the float
// arithmetic type, warp/block reductions, and the row helpers of softmax.cu and
// loss.cu. The loader pastes this text in place of `#include "common.cuh"`, so
// CuPy's on-disk cache (keyed by source text) recompiles when it changes, and no
// CUDA header is needed: NVRTC compiles these files on machines without a CUDA
// toolkit.
#pragma once

// Half and bfloat16 are stored as raw 16-bit patterns; arithmetic is in float.
struct gf_half { unsigned short bits; };
struct gf_bfloat16 { unsigned short bits; };

__device__ __forceinline__ float gf_to_float(float v) { return v; }
__device__ __forceinline__ double gf_to_float(double v) { return v; }
__device__ __forceinline__ float gf_to_float(gf_half v) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(v.bits));
    return f;
}
__device__ __forceinline__ float gf_to_float(gf_bfloat16 v) {
    return __uint_as_float(((unsigned int)v.bits) << 16);
}

// The arithmetic type of a storage type: double stays double, the rest compute in float.
template <typename T> struct gf_acc { typedef float type; };
template <> struct gf_acc<double> { typedef double type; };

template <typename T> __device__ __forceinline__ T gf_from_float(float v);
template <> __device__ __forceinline__ float gf_from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ double gf_from_float<double>(float v) { return v; }
template <> __device__ __forceinline__ gf_half gf_from_float<gf_half>(float v) {
    gf_half h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(v));
    return h;
}
template <> __device__ __forceinline__ gf_bfloat16 gf_from_float<gf_bfloat16>(float v) {
    gf_bfloat16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.bits) : "f"(v));
    return h;
}
template <typename T> __device__ __forceinline__ T gf_from_acc(double v) { return gf_from_float<T>((float)v); }
template <> __device__ __forceinline__ double gf_from_acc<double>(double v) { return v; }

// Grid-stride loop over [0, n): no assumption on n or on the launch size.
#define GF_GRID_STRIDE(i, n) \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (long long)blockDim.x * gridDim.x)

template <typename A> __device__ __forceinline__ A gf_neg_inf();
template <> __device__ __forceinline__ float gf_neg_inf<float>() { return __int_as_float(0xff800000); }
template <> __device__ __forceinline__ double gf_neg_inf<double>() { return __longlong_as_double(0xfff0000000000000ULL); }

template <typename A> __device__ __forceinline__ A gf_warp_sum(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}
template <typename A> __device__ __forceinline__ A gf_warp_max(A v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Block-wide sum or max (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// `scratch` holds 32 values in shared memory; the trailing barrier lets callers reuse it at once.
template <typename A> __device__ __forceinline__ A gf_block_sum(A v, A* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = gf_warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : (A)0;
    v = gf_warp_sum(v);
    __syncthreads();
    return v;
}
template <typename A> __device__ __forceinline__ A gf_block_max(A v, A* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    v = gf_warp_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : gf_neg_inf<A>();
    v = gf_warp_max(v);
    __syncthreads();
    return v;
}

// ---- Row helpers shared by softmax.cu and loss.cu (a row is handled by a warp or by a block) ----

// N consecutive values of T, aligned so that one load or store moves all of them.
template <typename T, int N> struct alignas(sizeof(T) * N) gf_row_pack { T v[N]; };

__device__ __forceinline__ float gf_row_exp(float v) { return expf(v); }
__device__ __forceinline__ double gf_row_exp(double v) { return exp(v); }
__device__ __forceinline__ float gf_row_log(float v) { return logf(v); }
__device__ __forceinline__ double gf_row_log(double v) { return log(v); }
// inf - inf and NaN - NaN are NaN, so this is false exactly for inf, -inf and NaN.
template <typename A> __device__ __forceinline__ bool gf_row_finite(A v) { return (v - v) == (A)0; }

template <bool WARP, typename A> __device__ __forceinline__ A gf_row_group_max(A v, A* scratch) {
    if constexpr (WARP) {
        return gf_warp_max(v);
    } else {
        return gf_block_max(v, scratch);
    }
}
template <bool WARP, typename A> __device__ __forceinline__ A gf_row_group_sum(A v, A* scratch) {
    if constexpr (WARP) {
        return gf_warp_sum(v);
    } else {
        return gf_block_sum(v, scratch);
    }
}

// Online (max, sum of exp(x - max)) update with one value. A -inf value adds nothing (exp(-inf
// - -inf) would be NaN); a NaN value makes the sum NaN, so NaN reaches every output.
template <typename A> __device__ __forceinline__ void gf_row_online(A v, A& m, A& s) {
    if (v > m) {
        s = s * gf_row_exp(m - v) + (A)1;
        m = v;
    } else if (v != gf_neg_inf<A>()) {
        s += gf_row_exp(v - m);
    }
}

// Group-wide row statistics from per-thread online (m, s): the shift (the row max when finite,
// else 0) and the sum of exp(x - shift). Every thread of the group must call it (reductions).
template <typename T, int VEC, bool WARP, typename A>
__device__ __forceinline__ void gf_row_finish_online(const gf_row_pack<T, VEC>* in, long long packs, int lane,
                                                     int width, A m, A s, A* scratch, A& shift, A& sum) {
    const A row_max = gf_row_group_max<WARP>(m, scratch);
    if (gf_row_finite(row_max)) {
        // m == -inf: this thread saw only -inf (s = 0) or NaN (s = NaN), nothing to rescale.
        const A part = (m == gf_neg_inf<A>()) ? s : s * gf_row_exp(m - row_max);
        shift = row_max;
        sum = gf_row_group_sum<WARP>(part, scratch);
    } else {
        // Rare (all -inf, +inf present, or all NaN): the unshifted sum, as the reference computes it.
        A part = (A)0;
        for (long long p = lane; p < packs; p += width) {
            const gf_row_pack<T, VEC> pack = in[p];
#pragma unroll
            for (int j = 0; j < VEC; ++j) part += gf_row_exp((A)gf_to_float(pack.v[j]));
        }
        shift = (A)0;
        sum = gf_row_group_sum<WARP>(part, scratch);
    }
}
