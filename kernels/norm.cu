// Layer norm over the last axis of a C-contiguous (rows, cols) array. The launcher
// (gradflow/backends/fused/norm.py) uses the row-cached kernels wherever a row fits in a block's
// registers and the long-row kernels for longer rows:
//
// row-cached (below): gf_norm_forward_cached and gf_norm_backward_fused hold the row in registers,
//                       so each input is read once; the fused backward also sums the weight/bias
//                       gradient partials per block, which gf_norm_column_sum adds up.
// long rows:
// gf_norm_forward:      one block per row (grid-stride over rows). Each thread runs Welford's
//                       update over its strided elements, the (count, mean, M2) triples are merged
//                       across the warp with shuffles and across the block through shared memory
//                       (Chan's parallel combine), then a second pass writes
//                       y = (x - mean) * rstd * w + b with rstd = 1 / sqrt(M2 / cols + eps)
//                       (M2 overflowing: see the overflow guard, gf_norm_scaled_rstd).
// gf_norm_backward:     one block per row: grad_x = rstd * (gw - mean(gw) - xhat * mean(gw * xhat))
//                       with gw = g * w (or g) and xhat = (x - mean) * rstd.
// gf_norm_param_grad:   partial sums of g * xhat and g over a chunk of rows for 32 columns at a
//                       time; the launcher sums the (chunks, cols) partials over chunks.
//
// VEC elements (16 bytes) are loaded at a time; the launcher picks VEC > 1 only when cols is a
// multiple of VEC and every pointer is 16-byte aligned. mean and rstd are in the accumulation type
// (float, or double for double input).
#include "common.cuh"

// VEC consecutive elements, aligned so that one load moves all of them.
template <typename T, int VEC> struct alignas(sizeof(T) * VEC) gf_norm_pack { T v[VEC]; };

template <typename T, int VEC>
__device__ __forceinline__ gf_norm_pack<T, VEC> gf_norm_load(const T* base, long long index) {
    return *reinterpret_cast<const gf_norm_pack<T, VEC>*>(base + index);
}

__device__ __forceinline__ float gf_norm_sqrt(float v) { return sqrtf(v); }
__device__ __forceinline__ double gf_norm_sqrt(double v) { return sqrt(v); }
__device__ __forceinline__ float gf_norm_ldexp(float v, int k) { return ldexpf(v, k); }
__device__ __forceinline__ double gf_norm_ldexp(double v, int k) { return ldexp(v, k); }

// The power of two k >= 0 that brings a finite |deviation| of at most `peak` to at most 1.
__device__ __forceinline__ int gf_norm_exponent(float peak) {
    int k;
    frexpf(peak, &k);
    return k > 0 ? k : 0;
}
__device__ __forceinline__ int gf_norm_exponent(double peak) {
    int k;
    frexp(peak, &k);
    return k > 0 ? k : 0;
}

// Overflow guard (rare path): when the squared deviations of a row overflow (|x - mean| past ~1.8e19
// in float), they are summed again divided by 2^k, k = gf_norm_exponent of the largest one, and
//   rstd = 2^-k / sqrt(scaled_sum / cols + eps * 4^-k),
// as reciprocal_std in gradflow/backends/fused/norm.py. Rows whose sum is finite never take it.
template <typename A>
__device__ __forceinline__ A gf_norm_scaled_rstd(A scaled_sum, int k, long long cols, double eps) {
    return gf_norm_ldexp((A)1 / gf_norm_sqrt(scaled_sum / (A)cols + gf_norm_ldexp((A)eps, -2 * k)), -k);
}

// Chan et al.'s combine of two Welford states; a state with count 0 leaves the other unchanged.
template <typename A>
__device__ __forceinline__ void gf_norm_combine(A& count, A& mean, A& m2, A other_count, A other_mean, A other_m2) {
    const A total = count + other_count;
    if (total == (A)0) return;
    const A delta = other_mean - mean;
    const A other_share = other_count / total;
    mean = mean + delta * other_share;
    m2 = m2 + other_m2 + delta * delta * count * other_share;
    count = total;
}

template <typename A> __device__ __forceinline__ void gf_norm_warp_combine(A& count, A& mean, A& m2) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        const A other_count = __shfl_xor_sync(0xffffffffu, count, offset);
        const A other_mean = __shfl_xor_sync(0xffffffffu, mean, offset);
        const A other_m2 = __shfl_xor_sync(0xffffffffu, m2, offset);
        gf_norm_combine(count, mean, m2, other_count, other_mean, other_m2);
    }
}

template <typename T, int VEC>
__global__ void __launch_bounds__(1024) gf_norm_forward(const T* __restrict__ x, const T* __restrict__ weight,
                                                        const T* __restrict__ bias, T* __restrict__ y,
                                                        typename gf_acc<T>::type* __restrict__ mean_out,
                                                        typename gf_acc<T>::type* __restrict__ rstd_out,
                                                        long long rows, long long cols, double eps,
                                                        long long has_weight, long long has_bias) {
    typedef typename gf_acc<T>::type A;
    __shared__ A warp_count[32], warp_mean[32], warp_m2[32], rescale_scratch[32];
    __shared__ A row_mean, row_rstd;
    __shared__ int row_overflow;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    const long long packs = cols / VEC;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* x_row = x + row * cols;
        T* y_row = y + row * cols;
        A count = 0, mean = 0, m2 = 0;
        for (long long p = threadIdx.x; p < packs; p += blockDim.x) {
            const gf_norm_pack<T, VEC> pack = gf_norm_load<T, VEC>(x_row, p * VEC);
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                const A value = (A)gf_to_float(pack.v[k]);
                count += (A)1;
                const A delta = value - mean;
                mean += delta / count;
                m2 += delta * (value - mean);
            }
        }
        gf_norm_warp_combine(count, mean, m2);
        if (lane == 0) {
            warp_count[warp] = count;
            warp_mean[warp] = mean;
            warp_m2[warp] = m2;
        }
        __syncthreads();
        if (warp == 0) {
            count = lane < warps ? warp_count[lane] : (A)0;
            mean = lane < warps ? warp_mean[lane] : (A)0;
            m2 = lane < warps ? warp_m2[lane] : (A)0;
            gf_norm_warp_combine(count, mean, m2);
            if (lane == 0) {
                row_mean = mean;
                row_rstd = (A)1 / gf_norm_sqrt(m2 / (A)cols + (A)eps);
                row_overflow = !gf_row_finite(m2) && gf_row_finite(mean);
                mean_out[row] = row_mean;
                rstd_out[row] = row_rstd;
            }
        }
        __syncthreads();
        // The next row's first write to shared memory comes after its own __syncthreads, which
        // every thread reaches only once it has read row_mean, row_rstd and row_overflow here.
        const A row_mu = row_mean;
        A row_r = row_rstd;
        if (row_overflow) {  // the same for the whole block: the guard's block reductions are safe
            A peak = 0;
            for (long long p = threadIdx.x; p < packs; p += blockDim.x) {
                const gf_norm_pack<T, VEC> pack = gf_norm_load<T, VEC>(x_row, p * VEC);
#pragma unroll
                for (int k = 0; k < VEC; ++k) peak = fmax(peak, fabs((A)gf_to_float(pack.v[k]) - row_mu));
            }
            peak = gf_block_max(peak, rescale_scratch);
            if (gf_row_finite(peak)) {
                const int shift = gf_norm_exponent(peak);
                A scaled = 0;
                for (long long p = threadIdx.x; p < packs; p += blockDim.x) {
                    const gf_norm_pack<T, VEC> pack = gf_norm_load<T, VEC>(x_row, p * VEC);
#pragma unroll
                    for (int k = 0; k < VEC; ++k) {
                        const A deviation = gf_norm_ldexp((A)gf_to_float(pack.v[k]) - row_mu, -shift);
                        scaled += deviation * deviation;
                    }
                }
                row_r = gf_norm_scaled_rstd(gf_block_sum(scaled, rescale_scratch), shift, cols, eps);
                if (threadIdx.x == 0) rstd_out[row] = row_r;
            }
        }
        for (long long p = threadIdx.x; p < packs; p += blockDim.x) {
            const gf_norm_pack<T, VEC> pack = gf_norm_load<T, VEC>(x_row, p * VEC);
            gf_norm_pack<T, VEC> w_pack, b_pack, out;
            if (has_weight) w_pack = gf_norm_load<T, VEC>(weight, p * VEC);
            if (has_bias) b_pack = gf_norm_load<T, VEC>(bias, p * VEC);
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                A value = ((A)gf_to_float(pack.v[k]) - row_mu) * row_r;
                if (has_weight) value *= (A)gf_to_float(w_pack.v[k]);
                if (has_bias) value += (A)gf_to_float(b_pack.v[k]);
                out.v[k] = gf_from_acc<T>(value);
            }
            *reinterpret_cast<gf_norm_pack<T, VEC>*>(y_row + p * VEC) = out;
        }
    }
}

template <typename T, int VEC>
__global__ void __launch_bounds__(1024) gf_norm_backward(const T* __restrict__ grad, const T* __restrict__ x,
                                                         const typename gf_acc<T>::type* __restrict__ mean,
                                                         const typename gf_acc<T>::type* __restrict__ rstd,
                                                         const T* __restrict__ weight, T* __restrict__ grad_x,
                                                         long long rows, long long cols, long long has_weight) {
    typedef typename gf_acc<T>::type A;
    __shared__ A scratch[32];
    const long long packs = cols / VEC;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* g_row = grad + row * cols;
        const T* x_row = x + row * cols;
        const A row_mu = mean[row], row_r = rstd[row];
        A sum_gw = 0, sum_gw_xhat = 0;
        for (long long p = threadIdx.x; p < packs; p += blockDim.x) {
            const gf_norm_pack<T, VEC> g_pack = gf_norm_load<T, VEC>(g_row, p * VEC);
            const gf_norm_pack<T, VEC> x_pack = gf_norm_load<T, VEC>(x_row, p * VEC);
            gf_norm_pack<T, VEC> w_pack;
            if (has_weight) w_pack = gf_norm_load<T, VEC>(weight, p * VEC);
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                A gw = (A)gf_to_float(g_pack.v[k]);
                if (has_weight) gw *= (A)gf_to_float(w_pack.v[k]);
                const A xhat = ((A)gf_to_float(x_pack.v[k]) - row_mu) * row_r;
                sum_gw += gw;
                sum_gw_xhat += gw * xhat;
            }
        }
        // gf_block_sum ends with a barrier, so scratch can be reused at once (and by the next row).
        const A mean_gw = gf_block_sum(sum_gw, scratch) / (A)cols;
        const A mean_gw_xhat = gf_block_sum(sum_gw_xhat, scratch) / (A)cols;
        T* out_row = grad_x + row * cols;
        for (long long p = threadIdx.x; p < packs; p += blockDim.x) {
            const gf_norm_pack<T, VEC> g_pack = gf_norm_load<T, VEC>(g_row, p * VEC);
            const gf_norm_pack<T, VEC> x_pack = gf_norm_load<T, VEC>(x_row, p * VEC);
            gf_norm_pack<T, VEC> w_pack, out;
            if (has_weight) w_pack = gf_norm_load<T, VEC>(weight, p * VEC);
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                A gw = (A)gf_to_float(g_pack.v[k]);
                if (has_weight) gw *= (A)gf_to_float(w_pack.v[k]);
                const A xhat = ((A)gf_to_float(x_pack.v[k]) - row_mu) * row_r;
                out.v[k] = gf_from_acc<T>(row_r * (gw - mean_gw - xhat * mean_gw_xhat));
            }
            *reinterpret_cast<gf_norm_pack<T, VEC>*>(out_row + p * VEC) = out;
        }
    }
}

// Block of 256 threads = 32 columns x 8 row lanes. A tile is (32 columns, one chunk of
// rows_per_chunk rows); tiles are visited with a grid-stride loop. Each tile writes its column
// sums to partial_*[chunk * cols + column] for every column it covers (zero for an empty chunk),
// so the partial buffers need no clearing.
template <typename T>
__global__ void __launch_bounds__(256) gf_norm_param_grad(const T* __restrict__ grad, const T* __restrict__ x,
                                                          const typename gf_acc<T>::type* __restrict__ mean,
                                                          const typename gf_acc<T>::type* __restrict__ rstd,
                                                          typename gf_acc<T>::type* __restrict__ partial_weight,
                                                          typename gf_acc<T>::type* __restrict__ partial_bias,
                                                          long long rows, long long cols, long long rows_per_chunk,
                                                          long long chunks, long long need_weight,
                                                          long long need_bias) {
    typedef typename gf_acc<T>::type A;
    __shared__ A weight_sums[8][33], bias_sums[8][33];
    const int column_lane = threadIdx.x & 31, row_lane = threadIdx.x >> 5;
    const long long column_tiles = (cols + 31) / 32;
    const long long tiles = column_tiles * chunks;
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long column = (tile % column_tiles) * 32 + column_lane;
        const long long chunk = tile / column_tiles;
        const long long first_row = chunk * rows_per_chunk;
        const long long end_row = first_row + rows_per_chunk < rows ? first_row + rows_per_chunk : rows;
        A weight_sum = 0, bias_sum = 0;
        if (column < cols) {
            for (long long row = first_row + row_lane; row < end_row; row += 8) {
                const A g = (A)gf_to_float(grad[row * cols + column]);
                if (need_weight) weight_sum += g * ((A)gf_to_float(x[row * cols + column]) - mean[row]) * rstd[row];
                bias_sum += g;
            }
        }
        weight_sums[row_lane][column_lane] = weight_sum;
        bias_sums[row_lane][column_lane] = bias_sum;
        __syncthreads();
        if (row_lane == 0 && column < cols) {
            A total_weight = 0, total_bias = 0;
#pragma unroll
            for (int lane = 0; lane < 8; ++lane) {
                total_weight += weight_sums[lane][column_lane];
                total_bias += bias_sums[lane][column_lane];
            }
            if (need_weight) partial_weight[chunk * cols + column] = total_weight;
            if (need_bias) partial_bias[chunk * cols + column] = total_bias;
        }
        __syncthreads();  // the next tile overwrites the shared sums
    }
}

// ---- Row-cached kernels (every row that fits in a block's registers) ----
//
// Each thread holds PACKS packs of the row in registers: pack p = threadIdx.x + i * blockDim.x
// for i < PACKS, present while p < cols / VEC. The launcher picks blockDim.x (a multiple of 32)
// and PACKS so that PACKS * blockDim.x * VEC >= cols; every use of a held pack is predicated on
// the same p < packs test that guarded its load. So a row is read from global memory once.

// Two block-wide sums with one pair of barriers (blockDim.x a multiple of 32); every thread gets
// both results. `scratch` holds 64 values in shared memory; the trailing barrier lets it be reused.
template <typename A> __device__ __forceinline__ void gf_norm_block_sum2(A& a, A& b, A* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    a = gf_warp_sum(a);
    b = gf_warp_sum(b);
    if (lane == 0) {
        scratch[warp] = a;
        scratch[32 + warp] = b;
    }
    __syncthreads();
    a = lane < warps ? scratch[lane] : (A)0;
    b = lane < warps ? scratch[32 + lane] : (A)0;
    a = gf_warp_sum(a);
    b = gf_warp_sum(b);
    __syncthreads();
}

// Forward with the row in registers: mean from the held values, then the sum of squared
// deviations from the same registers (two exact passes over registers, no E[x^2] - E[x]^2),
// then y written from the registers: one read and one write of the row.
template <typename T, int VEC, int PACKS>
__global__ void __launch_bounds__(1024) gf_norm_forward_cached(const T* __restrict__ x, const T* __restrict__ weight,
                                                               const T* __restrict__ bias, T* __restrict__ y,
                                                               typename gf_acc<T>::type* __restrict__ mean_out,
                                                               typename gf_acc<T>::type* __restrict__ rstd_out,
                                                               long long rows, long long cols, double eps,
                                                               long long has_weight, long long has_bias) {
    typedef typename gf_acc<T>::type A;
    __shared__ A scratch[32];
    const long long packs = cols / VEC;
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* x_row = x + row * cols;
        T* y_row = y + row * cols;
        gf_norm_pack<T, VEC> held[PACKS];
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) held[i] = gf_norm_load<T, VEC>(x_row, p * VEC);
        }
        A sum = 0;
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) {
#pragma unroll
                for (int k = 0; k < VEC; ++k) sum += (A)gf_to_float(held[i].v[k]);
            }
        }
        // gf_block_sum ends with a barrier, so scratch is free again for the next sum (and row).
        const A row_mu = gf_block_sum(sum, scratch) / (A)cols;
        A squares = 0;
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) {
#pragma unroll
                for (int k = 0; k < VEC; ++k) {
                    const A deviation = (A)gf_to_float(held[i].v[k]) - row_mu;
                    squares += deviation * deviation;
                }
            }
        }
        const A total = gf_block_sum(squares, scratch);
        A row_r = (A)1 / gf_norm_sqrt(total / (A)cols + (A)eps);
        if (!gf_row_finite(total) && gf_row_finite(row_mu)) {  // the same for the whole block
            A peak = 0;
#pragma unroll
            for (int i = 0; i < PACKS; ++i) {
                const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
                if (p < packs) {
#pragma unroll
                    for (int k = 0; k < VEC; ++k) peak = fmax(peak, fabs((A)gf_to_float(held[i].v[k]) - row_mu));
                }
            }
            peak = gf_block_max(peak, scratch);
            if (gf_row_finite(peak)) {
                const int shift = gf_norm_exponent(peak);
                A scaled = 0;
#pragma unroll
                for (int i = 0; i < PACKS; ++i) {
                    const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
                    if (p < packs) {
#pragma unroll
                        for (int k = 0; k < VEC; ++k) {
                            const A deviation = gf_norm_ldexp((A)gf_to_float(held[i].v[k]) - row_mu, -shift);
                            scaled += deviation * deviation;
                        }
                    }
                }
                row_r = gf_norm_scaled_rstd(gf_block_sum(scaled, scratch), shift, cols, eps);
            }
        }
        if (threadIdx.x == 0) {
            mean_out[row] = row_mu;
            rstd_out[row] = row_r;
        }
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) {
                gf_norm_pack<T, VEC> w_pack, b_pack, out;
                if (has_weight) w_pack = gf_norm_load<T, VEC>(weight, p * VEC);
                if (has_bias) b_pack = gf_norm_load<T, VEC>(bias, p * VEC);
#pragma unroll
                for (int k = 0; k < VEC; ++k) {
                    A value = ((A)gf_to_float(held[i].v[k]) - row_mu) * row_r;
                    if (has_weight) value *= (A)gf_to_float(w_pack.v[k]);
                    if (has_bias) value += (A)gf_to_float(b_pack.v[k]);
                    out.v[k] = gf_from_acc<T>(value);
                }
                *reinterpret_cast<gf_norm_pack<T, VEC>*>(y_row + p * VEC) = out;
            }
        }
    }
}

// Fused backward with g and x of the row in registers: grad_x as gf_norm_backward, and the
// weight/bias gradient partials g * xhat and g summed over the block's rows per column in
// registers (a thread keeps the same columns for every row, so no atomics). At the end each
// block writes its sums to row blockIdx.x of the (gridDim.x, cols) partial buffers, every column
// of that row (zeros for a block that got no rows), and gf_norm_column_sum adds the rows up.
template <typename T, int VEC, int PACKS>
__global__ void __launch_bounds__(512, 1) gf_norm_backward_fused(const T* __restrict__ grad, const T* __restrict__ x,
                                                              const typename gf_acc<T>::type* __restrict__ mean,
                                                              const typename gf_acc<T>::type* __restrict__ rstd,
                                                              const T* __restrict__ weight, T* __restrict__ grad_x,
                                                              typename gf_acc<T>::type* __restrict__ partial_weight,
                                                              typename gf_acc<T>::type* __restrict__ partial_bias,
                                                              long long rows, long long cols, long long has_weight,
                                                              long long need_weight, long long need_bias) {
    typedef typename gf_acc<T>::type A;
    __shared__ A scratch[64];
    const long long packs = cols / VEC;
    A weight_sums[PACKS][VEC], bias_sums[PACKS][VEC];
#pragma unroll
    for (int i = 0; i < PACKS; ++i) {
#pragma unroll
        for (int k = 0; k < VEC; ++k) {
            weight_sums[i][k] = 0;
            bias_sums[i][k] = 0;
        }
    }
    for (long long row = blockIdx.x; row < rows; row += gridDim.x) {
        const T* g_row = grad + row * cols;
        const T* x_row = x + row * cols;
        gf_norm_pack<T, VEC> g_held[PACKS], x_held[PACKS];
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) {
                g_held[i] = gf_norm_load<T, VEC>(g_row, p * VEC);
                x_held[i] = gf_norm_load<T, VEC>(x_row, p * VEC);
            }
        }
        const A row_mu = mean[row], row_r = rstd[row];
        A sum_gw = 0, sum_gw_xhat = 0;
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) {
                gf_norm_pack<T, VEC> w_pack;
                if (has_weight) w_pack = gf_norm_load<T, VEC>(weight, p * VEC);
#pragma unroll
                for (int k = 0; k < VEC; ++k) {
                    const A g = (A)gf_to_float(g_held[i].v[k]);
                    const A xhat = ((A)gf_to_float(x_held[i].v[k]) - row_mu) * row_r;
                    const A gw = has_weight ? g * (A)gf_to_float(w_pack.v[k]) : g;
                    sum_gw += gw;
                    sum_gw_xhat += gw * xhat;
                    weight_sums[i][k] += g * xhat;
                    bias_sums[i][k] += g;
                }
            }
        }
        gf_norm_block_sum2(sum_gw, sum_gw_xhat, scratch);
        const A mean_gw = sum_gw / (A)cols, mean_gw_xhat = sum_gw_xhat / (A)cols;
        T* out_row = grad_x + row * cols;
#pragma unroll
        for (int i = 0; i < PACKS; ++i) {
            const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
            if (p < packs) {
                gf_norm_pack<T, VEC> w_pack, out;
                if (has_weight) w_pack = gf_norm_load<T, VEC>(weight, p * VEC);
#pragma unroll
                for (int k = 0; k < VEC; ++k) {
                    const A g = (A)gf_to_float(g_held[i].v[k]);
                    const A xhat = ((A)gf_to_float(x_held[i].v[k]) - row_mu) * row_r;
                    const A gw = has_weight ? g * (A)gf_to_float(w_pack.v[k]) : g;
                    out.v[k] = gf_from_acc<T>(row_r * (gw - mean_gw - xhat * mean_gw_xhat));
                }
                *reinterpret_cast<gf_norm_pack<T, VEC>*>(out_row + p * VEC) = out;
            }
        }
    }
    const long long base = (long long)blockIdx.x * cols;
#pragma unroll
    for (int i = 0; i < PACKS; ++i) {
        const long long p = (long long)threadIdx.x + (long long)i * blockDim.x;
        if (p < packs) {
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                if (need_weight) partial_weight[base + p * VEC + k] = weight_sums[i][k];
                if (need_bias) partial_bias[base + p * VEC + k] = bias_sums[i][k];
            }
        }
    }
}

// out[c] = sum over parts of partial[part * cols + c]. Block of exactly 512 threads = 32 columns
// x 16 part lanes (coalesced reads along a partial row); column tiles are visited grid-stride.
template <typename A>
__global__ void __launch_bounds__(512) gf_norm_column_sum(const A* __restrict__ partial, A* __restrict__ out,
                                                          long long parts, long long cols) {
    __shared__ A sums[16][33];
    const int column_lane = threadIdx.x & 31, part_lane = threadIdx.x >> 5;
    const long long tiles = (cols + 31) / 32;
    for (long long tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
        const long long column = tile * 32 + column_lane;
        A total = 0;
        if (column < cols) {
#pragma unroll 4
            for (long long part = part_lane; part < parts; part += 16) total += partial[part * cols + column];
        }
        sums[part_lane][column_lane] = total;
        __syncthreads();
        if (part_lane == 0 && column < cols) {
            A column_total = 0;
#pragma unroll
            for (int lane = 0; lane < 16; ++lane) column_total += sums[lane][column_lane];
            out[column] = column_total;
        }
        __syncthreads();  // the next tile overwrites the shared sums
    }
}
