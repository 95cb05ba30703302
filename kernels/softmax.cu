// Row softmax and log-softmax over the last axis: forward, and backward from the saved output.
//
// A "row" is cols contiguous elements; rows are the product of the leading dims. Each row is
// handled by one group of threads: a warp (WARP = true, for rows of at most 32 * GF_SM_ITEMS
// elements, several rows per block) or a whole block (WARP = false). A group loops over rows
// with a grid stride, so any number of rows works with any grid.
//
// Rows that fit in the group's registers (GF_SM_ITEMS values per thread) are read from memory
// once. Longer rows take an online pass (running max and a sum rescaled whenever the max grows)
// and then a write pass.
//
// Stability: the row maximum M is subtracted before exponentiating. As in the NumPy reference
// (numpy_softmax_forward in gradflow/backends/fused/softmax.py), a row whose maximum is not
// finite (all -inf, or holding +inf, or all NaN) is left unshifted, so an all -inf row gives
// NaN (0 / 0) there and here; attention's safe softmax then zeroes such rows.
//
// VECTOR = true reads and writes 16 bytes at a time (float4-sized packs); the launcher picks it
// only when cols is a multiple of the pack width and every pointer is 16-byte aligned.
#include "common.cuh"

#define GF_SM_ITEMS 8

template <typename T, bool VECTOR, bool WARP>
__global__ void __launch_bounds__(1024)
gf_softmax_forward(const T* __restrict__ x, T* __restrict__ y, long long rows, long long cols, long long log_out) {
    typedef typename gf_acc<T>::type A;
    constexpr int VEC = VECTOR ? (int)(16 / sizeof(T)) : 1;
    constexpr int PACKS = GF_SM_ITEMS / VEC;
    typedef gf_row_pack<T, VEC> P;
    __shared__ A scratch[32];
    const int lane = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const int width = WARP ? 32 : (int)blockDim.x;
    const long long group = WARP ? (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : (long long)blockIdx.x;
    const long long groups = WARP ? (long long)gridDim.x * (blockDim.x >> 5) : (long long)gridDim.x;
    const long long packs = cols / VEC;
    const bool cached = packs <= (long long)width * PACKS;

    for (long long row = group; row < rows; row += groups) {
        const P* in = reinterpret_cast<const P*>(x + row * cols);
        P* out = reinterpret_cast<P*>(y + row * cols);
        if (cached) {
            A vals[PACKS * VEC];
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
            const A shift = gf_row_finite(row_max) ? row_max : (A)0;
            A local_sum = (A)0;
#pragma unroll
            for (int k = 0; k < PACKS; ++k) {
                const long long p = lane + (long long)k * width;
                if (p < packs) {
#pragma unroll
                    for (int j = 0; j < VEC; ++j) {
                        const A shifted = vals[k * VEC + j] - shift;
                        const A e = gf_row_exp(shifted);
                        local_sum += e;
                        vals[k * VEC + j] = log_out ? shifted : e;
                    }
                }
            }
            const A row_sum = gf_row_group_sum<WARP>(local_sum, scratch);
            const A log_sum = gf_row_log(row_sum);
            // One division per row, not per element (1 / 0 = inf and 0 * inf = NaN, as 0 / 0).
            const A inverse = (A)1 / row_sum;
#pragma unroll
            for (int k = 0; k < PACKS; ++k) {
                const long long p = lane + (long long)k * width;
                if (p < packs) {
                    P pack;
#pragma unroll
                    for (int j = 0; j < VEC; ++j) {
                        const A v = vals[k * VEC + j];
                        pack.v[j] = gf_from_acc<T>(log_out ? v - log_sum : v * inverse);
                    }
                    out[p] = pack;
                }
            }
        } else {
            A m = gf_neg_inf<A>(), s = (A)0;
            for (long long p = lane; p < packs; p += width) {
                const P pack = in[p];
#pragma unroll
                for (int j = 0; j < VEC; ++j) gf_row_online((A)gf_to_float(pack.v[j]), m, s);
            }
            A shift, row_sum;
            gf_row_finish_online<T, VEC, WARP>(in, packs, lane, width, m, s, scratch, shift, row_sum);
            const A log_sum = gf_row_log(row_sum);
            const A inverse = (A)1 / row_sum;
            for (long long p = lane; p < packs; p += width) {
                const P pack = in[p];
                P result;
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    const A shifted = (A)gf_to_float(pack.v[j]) - shift;
                    result.v[j] = gf_from_acc<T>(log_out ? shifted - log_sum : gf_row_exp(shifted) * inverse);
                }
                out[p] = result;
            }
        }
    }
}

// Backward from the output y and the incoming gradient g, per row:
//   softmax:      gx = y * (g - sum(g * y))
//   log_softmax:  gx = g - exp(y) * sum(g)
template <typename T, bool VECTOR, bool WARP>
__global__ void __launch_bounds__(1024)
gf_softmax_backward(const T* __restrict__ g, const T* __restrict__ y, T* __restrict__ gx, long long rows,
                    long long cols, long long log_out) {
    typedef typename gf_acc<T>::type A;
    constexpr int VEC = VECTOR ? (int)(16 / sizeof(T)) : 1;
    constexpr int PACKS = GF_SM_ITEMS / VEC;
    typedef gf_row_pack<T, VEC> P;
    __shared__ A scratch[32];
    const int lane = WARP ? (int)(threadIdx.x & 31) : (int)threadIdx.x;
    const int width = WARP ? 32 : (int)blockDim.x;
    const long long group = WARP ? (long long)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5) : (long long)blockIdx.x;
    const long long groups = WARP ? (long long)gridDim.x * (blockDim.x >> 5) : (long long)gridDim.x;
    const long long packs = cols / VEC;
    const bool cached = packs <= (long long)width * PACKS;

    for (long long row = group; row < rows; row += groups) {
        const P* grad_in = reinterpret_cast<const P*>(g + row * cols);
        const P* out_in = reinterpret_cast<const P*>(y + row * cols);
        P* result = reinterpret_cast<P*>(gx + row * cols);
        if (cached) {
            A gv[PACKS * VEC], yv[PACKS * VEC];
            A local = (A)0;
#pragma unroll
            for (int k = 0; k < PACKS; ++k) {
                const long long p = lane + (long long)k * width;
                if (p < packs) {
                    const P gp = grad_in[p], yp = out_in[p];
#pragma unroll
                    for (int j = 0; j < VEC; ++j) {
                        gv[k * VEC + j] = (A)gf_to_float(gp.v[j]);
                        yv[k * VEC + j] = (A)gf_to_float(yp.v[j]);
                        local += log_out ? gv[k * VEC + j] : gv[k * VEC + j] * yv[k * VEC + j];
                    }
                } else {
#pragma unroll
                    for (int j = 0; j < VEC; ++j) gv[k * VEC + j] = yv[k * VEC + j] = (A)0;
                }
            }
            const A total = gf_row_group_sum<WARP>(local, scratch);
#pragma unroll
            for (int k = 0; k < PACKS; ++k) {
                const long long p = lane + (long long)k * width;
                if (p < packs) {
                    P pack;
#pragma unroll
                    for (int j = 0; j < VEC; ++j) {
                        const A gj = gv[k * VEC + j], yj = yv[k * VEC + j];
                        pack.v[j] = gf_from_acc<T>(log_out ? gj - gf_row_exp(yj) * total : yj * (gj - total));
                    }
                    result[p] = pack;
                }
            }
        } else {
            A local = (A)0;
            for (long long p = lane; p < packs; p += width) {
                const P gp = grad_in[p], yp = out_in[p];
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    const A gj = (A)gf_to_float(gp.v[j]);
                    local += log_out ? gj : gj * (A)gf_to_float(yp.v[j]);
                }
            }
            const A total = gf_row_group_sum<WARP>(local, scratch);
            for (long long p = lane; p < packs; p += width) {
                const P gp = grad_in[p], yp = out_in[p];
                P pack;
#pragma unroll
                for (int j = 0; j < VEC; ++j) {
                    const A gj = (A)gf_to_float(gp.v[j]), yj = (A)gf_to_float(yp.v[j]);
                    pack.v[j] = gf_from_acc<T>(log_out ? gj - gf_row_exp(yj) * total : yj * (gj - total));
                }
                result[p] = pack;
            }
        }
    }
}
