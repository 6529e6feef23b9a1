// Queries of the host organ (tumorsynth/kernels/cpu/organ.py): the measuring scan, and the local
// checks that placement runs for each proposed centre.

#define TS_HU_MIN (-1024)
#define TS_N_BINS 4096

// One pass over the volume: bounding box, counts and the 1-HU histogram of the organ.
// res: [count, not_binary, not_finite, lo0, lo1, lo2, hi0, hi1, hi2, hist (4096)], lo preset to
// the shape and everything else to 0.
template <typename T>
__global__ void ts_measure(const T* __restrict__ image, const u8* __restrict__ organ, const i64 n,
                           const int n1, const int n2, u64* __restrict__ res) {
    __shared__ unsigned int hist[TS_N_BINS];
    __shared__ unsigned int counts[3];
    __shared__ int box[6];
    for (int b = threadIdx.x; b < TS_N_BINS; b += blockDim.x) hist[b] = 0;
    for (int a = threadIdx.x; a < 3; a += blockDim.x) {
        counts[a] = 0;
        box[a] = 0x7FFFFFFF;
        box[3 + a] = 0;
    }
    __syncthreads();
    unsigned int n_organ = 0, n_other = 0, n_bad = 0;
    int lo0 = 0x7FFFFFFF, lo1 = 0x7FFFFFFF, lo2 = 0x7FFFFFFF, hi0 = 0, hi1 = 0, hi2 = 0;
    const i64 plane = (i64)n1 * n2;
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        u8 m = organ[i];
        if (m == 0) continue;
        if (m != 1) {
            ++n_other;
            continue;
        }
        ++n_organ;
        int x = (int)(i / plane), y = (int)((i / n2) % n1), z = (int)(i % n2);
        lo0 = min(lo0, x); lo1 = min(lo1, y); lo2 = min(lo2, z);
        hi0 = max(hi0, x + 1); hi1 = max(hi1, y + 1); hi2 = max(hi2, z + 1);
        double value = (double)image[i];
        if (!isfinite(value)) {
            ++n_bad;
            continue;
        }
        double bin = fmin(fmax(floor(value) - TS_HU_MIN, 0.0), TS_N_BINS - 1.0);
        atomicAdd(&hist[(int)bin], 1u);
    }
    if (n_organ) {
        atomicAdd(&counts[0], n_organ);
        atomicMin(&box[0], lo0); atomicMin(&box[1], lo1); atomicMin(&box[2], lo2);
        atomicMax(&box[3], hi0); atomicMax(&box[4], hi1); atomicMax(&box[5], hi2);
    }
    if (n_other) atomicAdd(&counts[1], n_other);
    if (n_bad) atomicAdd(&counts[2], n_bad);
    __syncthreads();
    for (int b = threadIdx.x; b < TS_N_BINS; b += blockDim.x)
        if (hist[b]) atomicAdd(&res[9 + b], (u64)hist[b]);
    for (int a = threadIdx.x; a < 3; a += blockDim.x)
        if (counts[a]) atomicAdd(&res[a], (u64)counts[a]);
    if (threadIdx.x == 0 && counts[0]) {
        for (int a = 0; a < 3; ++a) {
            atomicMin(&res[3 + a], (u64)box[a]);
            atomicMax(&res[6 + a], (u64)box[3 + a]);
        }
    }
}

// Sets *flag when a voxel of box [lo, lo + m) within radius r of c (mm) is not organ.
extern "C" __global__ void ts_ball(const u8* __restrict__ organ, const int n1, const int n2,
                                   const int lo0, const int lo1, const int lo2,
                                   const int m0, const int m1, const int m2,
                                   const double sp0, const double sp1, const double sp2,
                                   const double c0, const double c1, const double c2,
                                   const double r2, int* __restrict__ flag) {
    i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (i64)m0 * m1 * m2) return;
    int x = lo0 + (int)(e / ((i64)m1 * m2)), y = lo1 + (int)((e / m2) % m1), z = lo2 + (int)(e % m2);
    double dx = x * sp0 - c0, dy = y * sp1 - c1, dz = z * sp2 - c2;
    if (dx * dx + dy * dy + dz * dz <= r2 && organ[((i64)x * n1 + y) * n2 + z] == 0) *flag = 1;
}

// Sets *flag when an organ voxel of box [lo, lo + m) inside the lesion `row` has a Gaussian-smoothed
// HU above the threshold (separable weights w0, w1, w2 of radii r0, r1, r2; nearest-value borders),
// summed in the CPU kernel's order: X innermost, then Z, then Y.
template <typename T>
__global__ void ts_vessel(const T* __restrict__ image, const u8* __restrict__ organ,
                          const int n0, const int n1, const int n2,
                          const double sp0, const double sp1, const double sp2,
                          const double* __restrict__ row,
                          const int lo0, const int lo1, const int lo2,
                          const int m0, const int m1, const int m2,
                          const double* __restrict__ w, const int r0, const int r1, const int r2,
                          const double threshold, int* __restrict__ flag) {
    i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= (i64)m0 * m1 * m2) return;
    int x = lo0 + (int)(e / ((i64)m1 * m2)), y = lo1 + (int)((e / m2) % m1), z = lo2 + (int)(e % m2);
    if (organ[((i64)x * n1 + y) * n2 + z] == 0) return;
    if (*(volatile int*)flag) return;
    double rho, big_r, sd;
    bool inside;
    int state = ts_lesion_at(row, x * sp0 - row[L_CENTER], y * sp1 - row[L_CENTER + 1],
                             z * sp2 - row[L_CENTER + 2], &rho, &big_r, &sd, &inside);
    if (state == TS_FAR || !inside) return;
    const double* w0 = w;
    const double* w1 = w + 2 * r0 + 1;
    const double* w2 = w1 + 2 * r1 + 1;
    double acc = 0.0;
    for (int t = -r1; t <= r1; ++t) {
        int yy = min(max(y + t, 0), n1 - 1);
        double inner = 0.0;
        for (int s = -r2; s <= r2; ++s) {
            int zz = min(max(z + s, 0), n2 - 1);
            double a = 0.0;
            for (int u = -r0; u <= r0; ++u) {
                int xx = min(max(x + u, 0), n0 - 1);
                a = a + w0[u + r0] * (double)image[((i64)xx * n1 + yy) * n2 + zz];
            }
            inner = inner + w2[s + r2] * a;
        }
        acc = acc + w1[t + r1] * inner;
    }
    if (acc > threshold) *flag = 1;
}

// First screen of candidate centres (one block per candidate): 0 not organ, 1 in the organ but too
// shallow or too close to a placed tumour, 2 passes (kernels/cpu/organ.py: screen_centres).
extern "C" __global__ void ts_screen(const u8* __restrict__ organ, const int n0, const int n1,
                                     const int n2, const double sp0, const double sp1,
                                     const double sp2, const i64* __restrict__ voxels,
                                     const double* __restrict__ centres, const double depth,
                                     const double* __restrict__ placed, const int n_placed,
                                     const double radius, signed char* __restrict__ out) {
    __shared__ int state, fail;
    const int n = blockIdx.x;
    const double* c = centres + 3 * (i64)n;
    if (threadIdx.x == 0) {
        const i64* v = voxels + 3 * (i64)n;
        int st = 0;
        if (organ[(v[0] * n1 + v[1]) * n2 + v[2]] != 0) {
            st = 2;
            for (int k = 0; k < n_placed; ++k) {
                double d2 = 0.0;
                for (int a = 0; a < 3; ++a) {
                    double d = c[a] - placed[4 * k + a];
                    d2 = d2 + d * d;
                }
                double r = radius + placed[4 * k + 3];
                if (d2 < r * r) {
                    st = 1;
                    break;
                }
            }
        }
        state = st;
        fail = 0;
    }
    __syncthreads();
    if (state == 2 && depth > 0.0) {  // ball_inside_organ, the block's threads sharing the voxels
        const double sp[3] = {sp0, sp1, sp2};
        const int dims[3] = {n0, n1, n2};
        i64 lo[3], m[3];
        bool outside = false;
        for (int a = 0; a < 3; ++a) {
            lo[a] = (i64)ceil((c[a] - depth) / sp[a]);
            i64 hi = (i64)floor((c[a] + depth) / sp[a]);
            if (lo[a] < 0 || hi >= dims[a]) outside = true;
            m[a] = hi - lo[a] + 1 > 0 ? hi - lo[a] + 1 : 0;
        }
        if (outside) {
            if (threadIdx.x == 0) fail = 1;
        } else {
            const double r2 = depth * depth;
            const i64 total = m[0] * m[1] * m[2];
            for (i64 e = threadIdx.x; e < total; e += blockDim.x) {
                if (*(volatile int*)&fail) break;
                i64 x = lo[0] + e / (m[1] * m[2]), y = lo[1] + (e / m[2]) % m[1], z = lo[2] + e % m[2];
                double dx = x * sp0 - c[0], dy = y * sp1 - c[1], dz = z * sp2 - c[2];
                if (dx * dx + dy * dy + dz * dz <= r2 && organ[(x * n1 + y) * n2 + z] == 0) fail = 1;
            }
        }
    }
    __syncthreads();
    if (threadIdx.x == 0) out[n] = (signed char)(state == 2 && fail ? 1 : state);
}
