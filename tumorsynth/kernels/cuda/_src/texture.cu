// Texture lattices of many lesions at once (tumorsynth/kernels/cpu/texture.py: texture_grid).
//
// The CPU builds each lattice in five steps: white noise on the density lattice, a separable
// "valid" blur (X, then Y, then Z), salt counts on the extended grain lattice, the same blur, and the
// scaling. Here each blur pass is one launch over the nodes of all lesions (white noise and salt
// counts are computed inside the X passes, the scaling inside the last pass): six launches for any
// number of lesions. Thread -> lesion by binary search of the stage's prefix sums.
//
// Per-lesion metadata (float64, TM_N per lesion): see tumorsynth/kernels/cuda/hostpack.py.

#define TM_H 0
#define TM_HA 1
#define TM_BASE 2
#define TM_SCALE 3
#define TM_DSTD 4
#define TM_MEAN 5
#define TM_SQRT_NORM 6
#define TM_VOL 7
#define TM_EXPECTED 8
#define TM_SEED_A 9
#define TM_SEED_C 10
#define TM_LO 11
#define TM_S 14
#define TM_ALO 17
#define TM_AN 20
#define TM_N 24
#define TS_R 3  // blur radius in lattice cells
#define TS_W (2 * TS_R + 1)

struct StageDims {
    i64 d0, d1, d2;
};

// Dimensions of stage `stage` (0: ZA_X, 1: ZA_Y, 2: ZA_Z, 3: C_X, 4: C_Y, 5: C_Z) of one lesion.
TS_DEV StageDims ts_stage_dims(const double* __restrict__ m, int stage) {
    i64 a0 = (i64)m[TM_AN], a1 = (i64)m[TM_AN + 1], a2 = (i64)m[TM_AN + 2];
    i64 s0 = (i64)m[TM_S], s1 = (i64)m[TM_S + 1], s2 = (i64)m[TM_S + 2];
    StageDims d;
    switch (stage) {
        case 0: d.d0 = a0; d.d1 = a1 + 2 * TS_R; d.d2 = a2 + 2 * TS_R; break;
        case 1: d.d0 = a0; d.d1 = a1; d.d2 = a2 + 2 * TS_R; break;
        case 2: d.d0 = a0; d.d1 = a1; d.d2 = a2; break;
        case 3: d.d0 = s0; d.d1 = s1 + 2 * TS_R; d.d2 = s2 + 2 * TS_R; break;
        case 4: d.d0 = s0; d.d1 = s1; d.d2 = s2 + 2 * TS_R; break;
        default: d.d0 = s0; d.d1 = s1; d.d2 = s2; break;
    }
    return d;
}

// Salt count of the extended grain-lattice node (I, J, K) (indices from lo - R).
TS_DEV double ts_salt(const double* __restrict__ m, const double* __restrict__ za, i64 I, i64 J,
                      i64 K) {
    double h = m[TM_H], ha = m[TM_HA];
    i64 lo0 = (i64)m[TM_LO], lo1 = (i64)m[TM_LO + 1], lo2 = (i64)m[TM_LO + 2];
    i64 alo0 = (i64)m[TM_ALO], alo1 = (i64)m[TM_ALO + 1], alo2 = (i64)m[TM_ALO + 2];
    double g0 = (double)(lo0 - TS_R + I) * h / ha - (double)alo0;
    double g1 = (double)(lo1 - TS_R + J) * h / ha - (double)alo1;
    double g2 = (double)(lo2 - TS_R + K) * h / ha - (double)alo2;
    i64 a0 = (i64)m[TM_AN], a1 = (i64)m[TM_AN + 1], a2 = (i64)m[TM_AN + 2];
    double d = fmin(fmax(0.5 + m[TM_DSTD] * ts_trilinear(za, a0, a1, a2, g0, g1, g2), 0.0), 1.0);
    double p = m[TM_BASE] + m[TM_SCALE] * d;
    double lam = p * m[TM_VOL];
    u32 seed_c = (u32)(i64)m[TM_SEED_C];
    double noise = ts_unit_noise(ts_hash(seed_c, lo0 - TS_R + I, lo1 - TS_R + J, lo2 - TS_R + K));
    return lam + sqrt(lam * (1.0 - p)) * noise;
}

extern "C" __global__ void ts_texture_stage(
    const int stage, const int n_lesions, const i64 total,
    const double* __restrict__ tm,      // (L, TM_N)
    const i64* __restrict__ prefix,     // (6, L + 1): element offsets of each stage, per lesion
    const i64* __restrict__ base,       // (5,): where stages 0..4 start in the scratch buffer
    const double* __restrict__ w,       // (7,) normalised Gaussian weights
    double* __restrict__ scratch, float* __restrict__ tex) {
    i64 e = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const i64* pre = prefix + (i64)stage * (n_lesions + 1);
    int l = ts_segment(pre, n_lesions, e);
    i64 local = e - pre[l];
    const double* m = tm + (i64)l * TM_N;
    StageDims d = ts_stage_dims(m, stage);
    i64 i = local / (d.d1 * d.d2), j = (local / d.d2) % d.d1, k = local % d.d2;
    double acc = 0.0;
    if (stage == 0) {  // white noise on the density lattice, blurred along X
        u32 seed_a = (u32)(i64)m[TM_SEED_A];
        i64 c0 = (i64)m[TM_ALO] - TS_R + i, c1 = (i64)m[TM_ALO + 1] - TS_R + j,
            c2 = (i64)m[TM_ALO + 2] - TS_R + k;
        for (int t = 0; t < TS_W; ++t) acc = acc + w[t] * ts_unit_noise(ts_hash(seed_a, c0 + t, c1, c2));
    } else if (stage == 3) {  // salt counts on the extended grain lattice, blurred along X
        const double* za = scratch + base[2] + prefix[2 * (n_lesions + 1) + l];
        for (int t = 0; t < TS_W; ++t) acc = acc + w[t] * ts_salt(m, za, i + t, j, k);
    } else {
        int prev = stage - 1;
        StageDims p = ts_stage_dims(m, prev);
        const double* src = scratch + base[prev] + prefix[prev * (n_lesions + 1) + l];
        if (stage == 1 || stage == 4) {  // blur along Y
            for (int t = 0; t < TS_W; ++t) acc = acc + w[t] * src[(i * p.d1 + j + t) * p.d2 + k];
        } else {  // blur along Z
            for (int t = 0; t < TS_W; ++t) acc = acc + w[t] * src[(i * p.d1 + j) * p.d2 + k + t];
        }
    }
    if (stage == 2) {
        scratch[base[2] + e] = acc / m[TM_SQRT_NORM];
    } else if (stage == 5) {
        tex[e] = (float)fmin(fmax(m[TM_MEAN] * acc / m[TM_EXPECTED], 0.0), 1.0);
    } else {
        scratch[base[stage] + e] = acc;
    }
}
