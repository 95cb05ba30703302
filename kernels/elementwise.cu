// Activations, forward and backward (gradflow/backends/fused/elementwise.py launches these).
//
//   forward:   y = act(x)
//   backward:  grad_x = grad * act'(x)
//
// The activation is a runtime code (GF_ACT_* below, the same numbers as ACTIVATIONS in the
// Python module, which a test checks by parsing this file): it is the same for every thread,
// so the switch never diverges, and one instantiation per dtype and pack width serves every
// activation. Arithmetic is in float (double for double); half values are converted on
// load and rounded once on store.
#include "common.cuh"

#define GF_ACT_IDENTITY 0
#define GF_ACT_RELU 1
#define GF_ACT_GELU 2
#define GF_ACT_GELU_TANH 3
#define GF_ACT_SILU 4
#define GF_ACT_TANH 5
#define GF_ACT_SIGMOID 6
#define GF_ACT_MISH 7

// float and double versions of the math used below (no CUDA header, so no C++ overloads).
__device__ __forceinline__ float gf_ew_exp(float v) { return expf(v); }
__device__ __forceinline__ double gf_ew_exp(double v) { return exp(v); }
__device__ __forceinline__ float gf_ew_erfc(float v) { return erfcf(v); }
__device__ __forceinline__ double gf_ew_erfc(double v) { return erfc(v); }
__device__ __forceinline__ float gf_ew_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double gf_ew_tanh(double v) { return tanh(v); }
__device__ __forceinline__ float gf_ew_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double gf_ew_abs(double v) { return fabs(v); }
__device__ __forceinline__ float gf_ew_log1p(float v) { return log1pf(v); }
__device__ __forceinline__ double gf_ew_log1p(double v) { return log1p(v); }

// 1 / (1 + exp(-z)) through exp(-|z|), which never overflows.
template <typename A> __device__ __forceinline__ A gf_ew_sigmoid(A z) {
    const A e = gf_ew_exp(-gf_ew_abs(z));
    const A r = (A)1 / ((A)1 + e);
    return z >= (A)0 ? r : e * r;
}

// tanh(softplus(z)), mish's gate. softplus(z) = log(1 + e^z) as max(z, 0) + log1p(e^-|z|), which
// never overflows; torch's log1p(exp(z)) reaches inf past z = 88 in float, where tanh(inf) = 1 is
// also what this gives. NaN stays NaN (through the log1p term).
template <typename A> __device__ __forceinline__ A gf_ew_tanh_softplus(A z) {
    return gf_ew_tanh((z > (A)0 ? z : (A)0) + gf_ew_log1p(gf_ew_exp(-gf_ew_abs(z))));
}

template <typename A> __device__ __forceinline__ A gf_ew_gelu_tanh_inner(A z) {
    const A sqrt_2_over_pi = (A)0.7978845608028654;
    return sqrt_2_over_pi * (z + (A)0.044715 * z * z * z);
}

template <typename A> __device__ __forceinline__ A gf_ew_act(A z, long long act) {
    switch (act) {
        case GF_ACT_RELU:
            // `z <= 0 ? 0 : z` keeps NaN as NaN (fmax would turn it into 0; torch keeps it).
            return z <= (A)0 ? (A)0 : z;
        case GF_ACT_GELU:
            // Phi(z) = erfc(-z / sqrt 2) / 2: 1 + erf(z / sqrt 2) cancels for z << 0 (a few
            // correct digits in float32 near z = -3), erfc does not.
            return (A)0.5 * z * gf_ew_erfc(z * (A)-0.7071067811865476);
        case GF_ACT_GELU_TANH:
            // (1 + tanh u) / 2 = sigmoid(2u): no cancellation for z << 0.
            return z * gf_ew_sigmoid((A)2 * gf_ew_gelu_tanh_inner(z));
        case GF_ACT_SILU:
            return z * gf_ew_sigmoid(z);
        case GF_ACT_TANH:
            return gf_ew_tanh(z);
        case GF_ACT_SIGMOID:
            return gf_ew_sigmoid(z);
        case GF_ACT_MISH:
            return z * gf_ew_tanh_softplus(z);
        default:
            return z;
    }
}

// grad * act'(z). ReLU selects rather than multiplies, as torch's threshold_backward does:
// an infinite incoming gradient at a negative input gives 0, not NaN, and at a NaN input the
// gradient passes through (NaN <= 0 is false).
template <typename A> __device__ __forceinline__ A gf_ew_act_backward(A grad, A z, long long act) {
    switch (act) {
        case GF_ACT_RELU:
            return z <= (A)0 ? (A)0 : grad;
        case GF_ACT_GELU: {
            const A cdf = (A)0.5 * gf_ew_erfc(z * (A)-0.7071067811865476);
            const A pdf = (A)0.3989422804014327 * gf_ew_exp((A)-0.5 * z * z);
            return grad * (cdf + z * pdf);
        }
        case GF_ACT_GELU_TANH: {
            // s = sigmoid(2u) = (1 + tanh u) / 2, so d/dz [z s] = s + 2 z s (1 - s) du/dz.
            const A s = gf_ew_sigmoid((A)2 * gf_ew_gelu_tanh_inner(z));
            const A d_inner = (A)0.7978845608028654 * ((A)1 + (A)(3.0 * 0.044715) * z * z);
            return grad * (s + (A)2 * z * s * ((A)1 - s) * d_inner);
        }
        case GF_ACT_SILU: {
            const A s = gf_ew_sigmoid(z);
            return grad * (s * ((A)1 + z * ((A)1 - s)));
        }
        case GF_ACT_TANH: {
            const A t = gf_ew_tanh(z);
            return grad * ((A)1 - t * t);
        }
        case GF_ACT_SIGMOID: {
            const A s = gf_ew_sigmoid(z);
            return grad * (s * ((A)1 - s));
        }
        case GF_ACT_MISH: {
            // d/dz [z t] with t = tanh(softplus(z)) and softplus' = sigmoid: t + z sigmoid(z) (1 - t^2),
            // in torch's order (at z = +inf that is 1 + inf * 0 = NaN, as torch's).
            const A t = gf_ew_tanh_softplus(z);
            return grad * (t + z * gf_ew_sigmoid(z) * ((A)1 - t * t));
        }
        default:
            return grad;
    }
}

// VEC consecutive elements moved as one 16-byte load/store (VEC = 1: plain scalar access).
template <typename T, int VEC> struct alignas(sizeof(T) * VEC) gf_ew_pack {
    T v[VEC];
};

// y = act(x) over n flat elements. The launcher picks VEC > 1 only when x and y are 16-byte
// aligned; the elements past the last whole pack (n % VEC of them) take the tail loop.
template <typename T, int VEC>
__global__ void gf_elementwise_activation_forward(const T* __restrict__ x, T* __restrict__ y, long long n,
                                                  long long act) {
    typedef typename gf_acc<T>::type A;
    typedef gf_ew_pack<T, VEC> Pack;
    const long long packs = n / VEC;
    GF_GRID_STRIDE(p, packs) {
        const Pack in = reinterpret_cast<const Pack*>(x)[p];
        Pack out;
#pragma unroll
        for (int k = 0; k < VEC; ++k) out.v[k] = gf_from_acc<T>(gf_ew_act((A)gf_to_float(in.v[k]), act));
        reinterpret_cast<Pack*>(y)[p] = out;
    }
    const long long done = packs * VEC;
    GF_GRID_STRIDE(t, n - done) {
        const long long i = done + t;
        y[i] = gf_from_acc<T>(gf_ew_act((A)gf_to_float(x[i]), act));
    }
}

// grad_x = grad * act'(x) over n flat elements; the same packing rules as the forward kernel
// (grad must share x's dtype and be 16-byte aligned too for VEC > 1).
template <typename T, int VEC>
__global__ void gf_elementwise_activation_backward(const T* __restrict__ grad, const T* __restrict__ x,
                                                   T* __restrict__ grad_x, long long n, long long act) {
    typedef typename gf_acc<T>::type A;
    typedef gf_ew_pack<T, VEC> Pack;
    const long long packs = n / VEC;
    GF_GRID_STRIDE(p, packs) {
        const Pack g = reinterpret_cast<const Pack*>(grad)[p];
        const Pack in = reinterpret_cast<const Pack*>(x)[p];
        Pack out;
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
            out.v[k] = gf_from_acc<T>(gf_ew_act_backward((A)gf_to_float(g.v[k]), (A)gf_to_float(in.v[k]), act));
        }
        reinterpret_cast<Pack*>(grad_x)[p] = out;
    }
    const long long done = packs * VEC;
    GF_GRID_STRIDE(t, n - done) {
        const long long i = done + t;
        grad_x[i] = gf_from_acc<T>(gf_ew_act_backward((A)gf_to_float(grad[i]), (A)gf_to_float(x[i]), act));
    }
}
