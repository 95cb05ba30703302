// Fused log-softmax + negative log-likelihood (cross-entropy with class indices) over (N, C)
// logits, with class weights, ignore_index and label smoothing eps.
//
// Forward, per row n with target t = t_n and log-probabilities lp_c:
//   loss_n = -(1 - eps) w[t] lp_t - eps / C * sum_c w[c] lp_c      (0 when t == ignore_index)
//   lp_c   = (x_c - shift_n) - log(total_n),  total_n = sum_c exp(x_c - shift_n),
//   shift_n = the row max when finite, else 0
// (w = 1 without a weight). Losses, shift and total are written in the arithmetic type A (float for
// float16/float32, double for double); the reduction over rows stays in Python. The logsumexp
// shift + log(total) is never formed: rounded (1e8 + log 2 == 1e8 in float), exp(x - lse) would
// make tied large logits' probabilities [1, 1] instead of [0.5, 0.5].
//
// Backward recomputes p = exp(x - shift) / total in the pass that writes the gradient, so the
// softmax is never stored:
//   d loss_n / d x_c = a_n p_c - b_c,  a_n = (1 - eps) w[t] + eps / C * sum_c' w[c'],
//                                      b_c = (1 - eps) w[t] [c == t] + eps / C * w[c]
// times the incoming gradient of row n; ignored rows get exactly 0 (their logits are not read).
//
// Targets are checked on the host (in [0, C) or == ignore_index) before any launch. Without a
// weight the launcher passes has_weight = 0 and some valid pointer that is never read.
#include "common.cuh"

#define GF_CE_ITEMS 8

template <typename T, bool VECTOR, bool WARP>
__global__ void __launch_bounds__(1024)
gf_loss_cross_entropy_forward(const T* __restrict__ logits, const long long* __restrict__ target,
                              const T* __restrict__ weight, long long has_weight,
                              typename gf_acc<T>::type* __restrict__ loss,
                              typename gf_acc<T>::type* __restrict__ shift_out,
                              typename gf_acc<T>::type* __restrict__ total_out,
                              long long rows, long long cols, long long ignore_index, double smoothing) {
    typedef typename gf_acc<T>::type A;
    constexpr int VEC = VECTOR ? (int)(16 / sizeof(T)) : 1;
    constexpr int PACKS = GF_CE_ITEMS / VEC;
    typedef gf_row_pack<T, VEC> P;
    __shared__ A scratch[32];
    const int lane = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const int width = WARP ? 32 : (int)blockDim.x;
    const long long group = WARP ? (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : (long long)blockIdx.x;
    const long long groups = WARP ? (long long)gridDim.x * (blockDim.x >> 5) : (long long)gridDim.x;
    const long long packs = cols / VEC;
    const bool cached = packs <= (long long)width * PACKS;
    const A eps = (A)smoothing;
    const A eps_per_class = (A)smoothing / (A)cols;

    for (long long row = group; row < rows; row += groups) {
        const T* x = logits + row * cols;
        const P* in = reinterpret_cast<const P*>(x);
        A shift, row_sum;
        A vals[PACKS * VEC];
        if (cached) {
            A local_max = gf_neg_inf<A>();
#pragma unroll
            for (int k = 0; k < PACKS; ++k) {
                const long long p = lane + (long long)k * width;
                if (p < packs) {
                    const P pack = in[p];
#pragma unroll
                    for (int j = 0; j < VEC; ++j) {
                        vals[k * VEC + j] = (A)gf_to_float(pack.v[j]);
                        local_max = fmax(local_max, vals[k * VEC + j]);
                    }
                } else {
#pragma unroll
                    for (int j = 0; j < VEC; ++j) vals[k * VEC + j] = gf_neg_inf<A>();
                }
            }
            const A row_max = gf_row_group_max<WARP>(local_max, scratch);
            shift = gf_row_finite(row_max) ? row_max : (A)0;
            A local_sum = (A)0;
#pragma unroll
            for (int k = 0; k < PACKS; ++k) {
                const long long p = lane + (long long)k * width;
                if (p < packs) {
#pragma unroll
                    for (int j = 0; j < VEC; ++j) local_sum += gf_row_exp(vals[k * VEC + j] - shift);
                }
            }
            row_sum = gf_row_group_sum<WARP>(local_sum, scratch);
        } else {
            A m = gf_neg_inf<A>(), s = (A)0;
            for (long long p = lane; p < packs; p += width) {
                const P pack = in[p];
#pragma unroll
                for (int j = 0; j < VEC; ++j) gf_row_online((A)gf_to_float(pack.v[j]), m, s);
            }
            // The same steps as gf_row_finish_online (common.cuh), written out here: calling it changes
            // loss.cu's generated code, and this is the code that passed on the H100.
            const A row_max = gf_row_group_max<WARP>(m, scratch);
            if (gf_row_finite(row_max)) {
                // m == -inf: this thread saw only -inf (s = 0) or NaN (s = NaN): nothing to rescale.
                const A part = (m == gf_neg_inf<A>()) ? s : s * gf_row_exp(m - row_max);
                shift = row_max;
                row_sum = gf_row_group_sum<WARP>(part, scratch);
            } else {
                // Rare (all -inf, +inf present, or all NaN): the unshifted sum, as the reference does.
                A part = (A)0;
                for (long long p = lane; p < packs; p += width) {
                    const P pack = in[p];
#pragma unroll
                    for (int j = 0; j < VEC; ++j) part += gf_row_exp((A)gf_to_float(pack.v[j]));
                }
                shift = (A)0;
                row_sum = gf_row_group_sum<WARP>(part, scratch);
            }
        }
        const A log_sum = gf_row_log(row_sum);

        // eps / C * sum_c w[c] lp_c, only with smoothing (eps is the same for the whole grid).
        A smooth = (A)0;
        if (smoothing > 0.0) {
            A local = (A)0;
            if (cached) {
#pragma unroll
                for (int k = 0; k < PACKS; ++k) {
                    const long long p = lane + (long long)k * width;
                    if (p < packs) {
#pragma unroll
                        for (int j = 0; j < VEC; ++j) {
                            const A lp = vals[k * VEC + j] - shift - log_sum;
                            local += has_weight ? (A)gf_to_float(weight[p * VEC + j]) * lp : lp;
                        }
                    }
                }
            } else {
                for (long long p = lane; p < packs; p += width) {
                    const P pack = in[p];
#pragma unroll
                    for (int j = 0; j < VEC; ++j) {
                        const A lp = (A)gf_to_float(pack.v[j]) - shift - log_sum;
                        local += has_weight ? (A)gf_to_float(weight[p * VEC + j]) * lp : lp;
                    }
                }
            }
            smooth = gf_row_group_sum<WARP>(local, scratch);
        }

        if (lane == 0) {
            const long long t = target[row];
            A result = (A)0;
            if (t != ignore_index) {
                const A target_weight = has_weight ? (A)gf_to_float(weight[t]) : (A)1;
                const A picked = (A)gf_to_float(x[t]) - shift - log_sum;
                result = -((A)1 - eps) * target_weight * picked;
                if (smoothing > 0.0) result -= eps_per_class * smooth;
            }
            loss[row] = result;
            shift_out[row] = shift;
            total_out[row] = row_sum;
        }
    }
}

// One thread per pack of VEC logits of one row (cols is a multiple of VEC when VECTOR), over all
// rows * cols elements with a grid stride. grad_stride is 1 for a per-row gradient, 0 for one
// gradient shared by every row (the 'sum' and 'mean' reductions).
template <typename T, bool VECTOR>
__global__ void __launch_bounds__(1024)
gf_loss_cross_entropy_backward(const T* __restrict__ logits, const long long* __restrict__ target,
                               const T* __restrict__ weight, long long has_weight,
                               const typename gf_acc<T>::type* __restrict__ weight_sum,
                               const typename gf_acc<T>::type* __restrict__ shift,
                               const typename gf_acc<T>::type* __restrict__ total,
                               const typename gf_acc<T>::type* __restrict__ grad, long long grad_stride,
                               T* __restrict__ grad_logits, long long rows, long long cols, long long ignore_index,
                               double smoothing) {
    typedef typename gf_acc<T>::type A;
    constexpr int VEC = VECTOR ? (int)(16 / sizeof(T)) : 1;
    typedef gf_row_pack<T, VEC> P;
    const long long packs = rows * (cols / VEC);
    const A eps = (A)smoothing;
    const A eps_per_class = (A)smoothing / (A)cols;
    const P* in = reinterpret_cast<const P*>(logits);
    P* out = reinterpret_cast<P*>(grad_logits);
    const bool small = rows * cols <= 0xffffffffLL;

    GF_GRID_STRIDE(p, packs) {
        const long long first = p * VEC;  // all VEC elements lie in one row: VEC divides cols
        // 32-bit division is inlined, 64-bit division is a call: use it only past 2^32 elements.
        const long long row = small ? (long long)((unsigned int)first / (unsigned int)cols) : first / cols;
        const long long col = first - row * cols;
        const long long t = target[row];
        P result;
        if (t == ignore_index) {
#pragma unroll
            for (int j = 0; j < VEC; ++j) result.v[j] = gf_from_acc<T>(0.0);
        } else {
            const A target_weight = has_weight ? (A)gf_to_float(weight[t]) : (A)1;
            const A total_weight = has_weight ? weight_sum[0] : (A)cols;
            const A row_total = ((A)1 - eps) * target_weight + eps_per_class * total_weight;
            const A g = grad[row * grad_stride];
            const A row_shift = shift[row], row_sum = total[row];
            const P pack = in[p];
#pragma unroll
            for (int j = 0; j < VEC; ++j) {
                const long long c = col + j;
                const A prob = gf_row_exp((A)gf_to_float(pack.v[j]) - row_shift) / row_sum;
                A target_part = (c == t) ? ((A)1 - eps) * target_weight : (A)0;
                if (smoothing > 0.0) target_part += eps_per_class * (has_weight ? (A)gf_to_float(weight[c]) : (A)1);
                result.v[j] = gf_from_acc<T>(g * (row_total * prob - target_part));
            }
        }
        out[p] = result;
    }
}
