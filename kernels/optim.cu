// Multi-tensor optimizer updates: every parameter of a group (of one dtype) in ONE launch.
//
// The launcher (gradflow/backends/fused/optim.py) passes two device tables:
//   tensors[t * GF_OPTIM_FIELDS + k]: param, grad, state0, state1, state2 pointers (as integers;
//                                     0 where a state is unused) and numel of tensor t;
//   chunks[2 * c], chunks[2 * c + 1]: tensor index and first element of chunk c.
// A block walks chunks with a grid-stride loop; its threads walk the chunk's elements.
// `chunk` (elements per chunk) is a multiple of 4, so with 16-byte aligned base pointers
// every vector position (a multiple of 4 within the tensor) is 16-byte aligned (VEC path).
//
// T is the parameter (and gradient) storage type; the state and the arithmetic use
// gf_acc<T>::type: double for double, float for float, gf_half and gf_bfloat16, so
// 16-bit parameters keep float32 state and are rounded (to nearest even) once per step.
//
// Per-tensor scalars (Adam's step size and bias correction, SGD's first-step flag) are kernel
// arguments when every tensor shares them; otherwise `per_tensor` holds them (the flag
// `use_per_tensor`). Real-valued constants arrive as doubles computed once on the host
// (gradflow/optim/_functional.py), the values the CPU update (optim_numpy.py, the reference)
// receives too, and are rounded to the arithmetic type once.
#include "common.cuh"

#define GF_OPTIM_FIELDS 6

// 16-byte (and 8-byte) aligned groups of four values: one vector memory instruction each.
struct alignas(16) gf_optim_f4 { float v[4]; };
struct alignas(16) gf_optim_d2 { double v[2]; };
struct alignas(8) gf_optim_h4 { unsigned short v[4]; };

__device__ __forceinline__ void gf_optim_load4(const float* p, float out[4]) {
    const gf_optim_f4 x = *reinterpret_cast<const gf_optim_f4*>(p);
    out[0] = x.v[0]; out[1] = x.v[1]; out[2] = x.v[2]; out[3] = x.v[3];
}
__device__ __forceinline__ void gf_optim_load4(const double* p, double out[4]) {
    const gf_optim_d2 a = reinterpret_cast<const gf_optim_d2*>(p)[0];
    const gf_optim_d2 b = reinterpret_cast<const gf_optim_d2*>(p)[1];
    out[0] = a.v[0]; out[1] = a.v[1]; out[2] = b.v[0]; out[3] = b.v[1];
}
__device__ __forceinline__ void gf_optim_load4(const gf_half* p, float out[4]) {
    const gf_optim_h4 x = *reinterpret_cast<const gf_optim_h4*>(p);
    for (int k = 0; k < 4; ++k) { gf_half h; h.bits = x.v[k]; out[k] = gf_to_float(h); }
}
__device__ __forceinline__ void gf_optim_load4(const gf_bfloat16* p, float out[4]) {
    const gf_optim_h4 x = *reinterpret_cast<const gf_optim_h4*>(p);
    for (int k = 0; k < 4; ++k) { gf_bfloat16 h; h.bits = x.v[k]; out[k] = gf_to_float(h); }
}

__device__ __forceinline__ void gf_optim_store4(float* p, const float in[4]) {
    gf_optim_f4 x;
    x.v[0] = in[0]; x.v[1] = in[1]; x.v[2] = in[2]; x.v[3] = in[3];
    *reinterpret_cast<gf_optim_f4*>(p) = x;
}
__device__ __forceinline__ void gf_optim_store4(double* p, const double in[4]) {
    gf_optim_d2 a, b;
    a.v[0] = in[0]; a.v[1] = in[1]; b.v[0] = in[2]; b.v[1] = in[3];
    reinterpret_cast<gf_optim_d2*>(p)[0] = a;
    reinterpret_cast<gf_optim_d2*>(p)[1] = b;
}
__device__ __forceinline__ void gf_optim_store4(gf_half* p, const float in[4]) {
    gf_optim_h4 x;
    for (int k = 0; k < 4; ++k) x.v[k] = gf_from_float<gf_half>(in[k]).bits;
    *reinterpret_cast<gf_optim_h4*>(p) = x;
}
__device__ __forceinline__ void gf_optim_store4(gf_bfloat16* p, const float in[4]) {
    gf_optim_h4 x;
    for (int k = 0; k < 4; ++k) x.v[k] = gf_from_float<gf_bfloat16>(in[k]).bits;
    *reinterpret_cast<gf_optim_h4*>(p) = x;
}

// One element in the arithmetic type, back to storage (rounded to nearest even for 16-bit types).
__device__ __forceinline__ void gf_optim_store1(float* p, float v) { *p = v; }
__device__ __forceinline__ void gf_optim_store1(double* p, double v) { *p = v; }
__device__ __forceinline__ void gf_optim_store1(gf_half* p, float v) { *p = gf_from_float<gf_half>(v); }
__device__ __forceinline__ void gf_optim_store1(gf_bfloat16* p, float v) { *p = gf_from_float<gf_bfloat16>(v); }

template <typename P>
__device__ __forceinline__ P* gf_optim_pointer(long long address) {
    return reinterpret_cast<P*>(static_cast<unsigned long long>(address));
}

__device__ __forceinline__ float gf_optim_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double gf_optim_sqrt(double v) { return sqrt(v); }

// NaN-propagating maximum, as numpy.maximum / torch.maximum (fmax would drop a NaN).
template <typename A>
__device__ __forceinline__ A gf_optim_max(A a, A b) {
    return (a != a || a >= b) ? a : b;
}

// g <- -grad (maximize), then g <- g + weight_decay * p, in the reference's operation order.
template <typename A>
__device__ __forceinline__ A gf_optim_effective_grad(A grad, A p, A weight_decay, bool maximize) {
    if (weight_decay != (A)0) {
        const A decay = p * weight_decay;
        return maximize ? decay - grad : grad + decay;
    }
    return maximize ? -grad : grad;
}

// Constants of one Adam launch, rounded to the arithmetic type once.
template <typename A>
struct gf_optim_adam_constants {
    A decay_factor;     // 1 - lr * weight_decay (decoupled) or 1
    A coupled_decay;    // weight_decay (L2) or 0
    A lerp_weight;      // 1 - beta1, or beta1's complement when lerping from the end (see below)
    A beta2, one_minus_beta2, eps;
    bool decoupled, amsgrad, maximize, lerp_from_end;
};

// One Adam element: p, m, v (and v_max) in the arithmetic type, updated in place.
template <typename A>
__device__ __forceinline__ void gf_optim_adam_element(A& p, A grad, A& m, A& v, A& v_max,
                                                      const gf_optim_adam_constants<A>& c,
                                                      A neg_step_size, A bias_correction2_sqrt) {
    if (c.decoupled) p = p * c.decay_factor;                               // p = p * (1 - lr * wd)
    const A g = gf_optim_effective_grad(grad, p, c.coupled_decay, c.maximize);
    const A diff = g - m;                                                    // lerp as PyTorch rounds it:
    m = c.lerp_from_end ? g - c.lerp_weight * diff : m + c.lerp_weight * diff;  // m = beta1 m + (1-beta1) g
    v = v * c.beta2 + (g * g) * c.one_minus_beta2;                           // v = beta2 v + (1-beta2) g^2
    A second = v;
    if (c.amsgrad) {
        v_max = gf_optim_max(v_max, v);                                      // v_max = max(v_max, v)
        second = v_max;
    }
    const A denom = gf_optim_sqrt(second) / bias_correction2_sqrt + c.eps;  // sqrt(v)/sqrt(1-beta2^t) + eps
    p = p + (m / denom) * neg_step_size;                                     // p = p - lr/(1-beta1^t) m/denom
}

template <typename T, bool VEC>
__global__ void gf_optim_adam(const long long* tensors, const long long* chunks, long long n_chunks,
                              long long chunk, const double* per_tensor, long long use_per_tensor,
                              double neg_step_size, double bias_correction2_sqrt, double decay_factor,
                              double coupled_decay, double lerp_weight, long long lerp_from_end,
                              double beta2, double one_minus_beta2, double eps, long long decoupled,
                              long long amsgrad, long long maximize) {
    typedef typename gf_acc<T>::type A;
    gf_optim_adam_constants<A> c;
    c.decay_factor = (A)decay_factor;
    c.coupled_decay = (A)coupled_decay;
    c.lerp_weight = (A)lerp_weight;
    c.beta2 = (A)beta2;
    c.one_minus_beta2 = (A)one_minus_beta2;
    c.eps = (A)eps;
    c.decoupled = decoupled != 0;
    c.amsgrad = amsgrad != 0;
    c.maximize = maximize != 0;
    c.lerp_from_end = lerp_from_end != 0;

    for (long long index = blockIdx.x; index < n_chunks; index += gridDim.x) {
        const long long tensor = chunks[2 * index];
        const long long start = chunks[2 * index + 1];
        const long long* row = tensors + tensor * GF_OPTIM_FIELDS;
        T* param = gf_optim_pointer<T>(row[0]);
        const T* grad = gf_optim_pointer<const T>(row[1]);
        A* exp_avg = gf_optim_pointer<A>(row[2]);
        A* exp_avg_sq = gf_optim_pointer<A>(row[3]);
        A* max_exp_avg_sq = gf_optim_pointer<A>(row[4]);  // only touched when amsgrad
        const long long numel = row[5];
        const long long end = start + chunk < numel ? start + chunk : numel;
        A step = (A)neg_step_size, correction = (A)bias_correction2_sqrt;
        if (use_per_tensor) {
            step = (A)per_tensor[2 * tensor];
            correction = (A)per_tensor[2 * tensor + 1];
        }
        long long tail = start;
        if (VEC) {
            const long long vec_end = start + ((end - start) / 4) * 4;
            for (long long i = start + 4LL * threadIdx.x; i < vec_end; i += 4LL * blockDim.x) {
                A p[4], g[4], m[4], v[4], v_max[4];
                gf_optim_load4(param + i, p);
                gf_optim_load4(grad + i, g);
                gf_optim_load4(exp_avg + i, m);
                gf_optim_load4(exp_avg_sq + i, v);
                if (c.amsgrad) gf_optim_load4(max_exp_avg_sq + i, v_max);
                else for (int k = 0; k < 4; ++k) v_max[k] = (A)0;
                for (int k = 0; k < 4; ++k) gf_optim_adam_element(p[k], g[k], m[k], v[k], v_max[k], c, step, correction);
                gf_optim_store4(param + i, p);
                gf_optim_store4(exp_avg + i, m);
                gf_optim_store4(exp_avg_sq + i, v);
                if (c.amsgrad) gf_optim_store4(max_exp_avg_sq + i, v_max);
            }
            tail = vec_end;
        }
        for (long long i = tail + threadIdx.x; i < end; i += blockDim.x) {
            A p = gf_to_float(param[i]), m = exp_avg[i], v = exp_avg_sq[i];
            A v_max = c.amsgrad ? max_exp_avg_sq[i] : (A)0;
            gf_optim_adam_element(p, (A)gf_to_float(grad[i]), m, v, v_max, c, step, correction);
            gf_optim_store1(param + i, p);
            exp_avg[i] = m;
            exp_avg_sq[i] = v;
            if (c.amsgrad) max_exp_avg_sq[i] = v_max;
        }
    }
}

// Constants of one SGD launch, rounded to the arithmetic type once.
template <typename A>
struct gf_optim_sgd_constants {
    A neg_lr, momentum, one_minus_dampening, weight_decay;
    bool use_momentum, nesterov, maximize;
};

// One SGD element: p and the momentum buffer in the arithmetic type, updated in place.
template <typename A>
__device__ __forceinline__ void gf_optim_sgd_element(A& p, A grad, A& buf, bool first,
                                                     const gf_optim_sgd_constants<A>& c) {
    const A g = gf_optim_effective_grad(grad, p, c.weight_decay, c.maximize);
    A direction = g;
    if (c.use_momentum) {
        buf = first ? g : buf * c.momentum + g * c.one_minus_dampening;  // buf = g (first step) or blended
        direction = c.nesterov ? g + buf * c.momentum : buf;              // Nesterov looks ahead
    }
    p = p + direction * c.neg_lr;                                          // p = p - lr * d
}

template <typename T, bool VEC>
__global__ void gf_optim_sgd(const long long* tensors, const long long* chunks, long long n_chunks,
                             long long chunk, const double* per_tensor, long long use_per_tensor,
                             long long first_step, double neg_lr, double momentum, double one_minus_dampening,
                             double weight_decay, long long use_momentum, long long nesterov,
                             long long maximize) {
    typedef typename gf_acc<T>::type A;
    gf_optim_sgd_constants<A> c;
    c.neg_lr = (A)neg_lr;
    c.momentum = (A)momentum;
    c.one_minus_dampening = (A)one_minus_dampening;
    c.weight_decay = (A)weight_decay;
    c.use_momentum = use_momentum != 0;
    c.nesterov = nesterov != 0;
    c.maximize = maximize != 0;

    for (long long index = blockIdx.x; index < n_chunks; index += gridDim.x) {
        const long long tensor = chunks[2 * index];
        const long long start = chunks[2 * index + 1];
        const long long* row = tensors + tensor * GF_OPTIM_FIELDS;
        T* param = gf_optim_pointer<T>(row[0]);
        const T* grad = gf_optim_pointer<const T>(row[1]);
        A* buffer = gf_optim_pointer<A>(row[2]);  // only touched with momentum
        const long long numel = row[5];
        const long long end = start + chunk < numel ? start + chunk : numel;
        const bool first = use_per_tensor ? per_tensor[tensor] != 0.0 : first_step != 0;
        long long tail = start;
        if (VEC) {
            const long long vec_end = start + ((end - start) / 4) * 4;
            for (long long i = start + 4LL * threadIdx.x; i < vec_end; i += 4LL * blockDim.x) {
                A p[4], g[4], buf[4];
                gf_optim_load4(param + i, p);
                gf_optim_load4(grad + i, g);
                // The first momentum step overwrites the buffer: it need not be read.
                if (c.use_momentum && !first) gf_optim_load4(buffer + i, buf);
                else for (int k = 0; k < 4; ++k) buf[k] = (A)0;
                for (int k = 0; k < 4; ++k) gf_optim_sgd_element(p[k], g[k], buf[k], first, c);
                gf_optim_store4(param + i, p);
                if (c.use_momentum) gf_optim_store4(buffer + i, buf);
            }
            tail = vec_end;
        }
        for (long long i = tail + threadIdx.x; i < end; i += blockDim.x) {
            A p = gf_to_float(param[i]);
            A buf = (c.use_momentum && !first) ? buffer[i] : (A)0;
            gf_optim_sgd_element(p, (A)gf_to_float(grad[i]), buf, first, c);
            gf_optim_store1(param + i, p);
            if (c.use_momentum) buffer[i] = buf;
        }
    }
}
