// Shared by every tumorsynth CUDA kernel. Python prepends the `L_*` constants of
// tumorsynth/kernels/layout.py as #defines (see _compile.py), so the packed row is read at the same
// indices as the numba kernels.
//
// Every expression below follows the numba kernels (tumorsynth/kernels/cpu) operation for operation,
// and the module is compiled with --fmad=false (no fused multiply-add): additions, products,
// quotients and square roots are then the same IEEE double operations as on the CPU, so shapes,
// labels, edge weights and texture lattices agree bit for bit; only exp / erfc / cbrt (capsule,
// necrotic core, mass effect) may differ in the last ulp.

typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned char u8;

#define TS_DEV __device__ __forceinline__

#define TS_SQRT2 1.4142135623730951
#define TS_MIN_RADIAL 0.2
#define TS_INV24 (1.0 / 16777216.0)
#define TS_INV_SQRT3 0.5773502691896258  // 1 / sqrt(3), the double cpu/effects.py computes
#define TS_INV_SQRT8 0.35355339059327373  // 1 / sqrt(8)
#define TS_FAR 0   // beyond FAR_RHO: the lesion changes nothing here
#define TS_DEEP 1  // below INNER_RHO: deep inside (signed distance -inf on the CPU)
#define TS_NEAR 2  // in between: the signed distance is computed

// ---- counter-based hash (tumorsynth/kernels/hashing.py: lowbias32) -------------------------------
TS_DEV u32 ts_mix(u32 x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

TS_DEV u32 ts_hash(u32 seed, i64 i, i64 j, i64 k) {
    u32 h = ts_mix(seed);
    h = ts_mix(h ^ (u32)i);
    h = ts_mix(h ^ (u32)j);
    return ts_mix(h ^ (u32)k);
}

TS_DEV double ts_unit_noise(u32 h) {
    return ((double)(h >> 8) * TS_INV24 - 0.5) * 3.4641016151377544;
}

// ---- shape (tumorsynth/kernels/cpu/shape.py, render.py: lesion_at) ---------------------------------
TS_DEV double ts_radial(const double* __restrict__ row, double x, double y, double z) {
    const double* c = row + L_DEFORM;
    double z2 = z * z;
    double s = c[0] * x + c[1] * y + c[2] * z;
    s = s + (c[3] * x * y + c[4] * y * z + c[5] * x * z);
    s = s + (c[6] * (3.0 * z2 - 1.0) + c[7] * (x * x - y * y));
    s = s + (c[8] * y * (3.0 * x * x - y * y) + c[9] * x * y * z);
    s = s + (c[10] * y * (5.0 * z2 - 1.0) + c[11] * z * (5.0 * z2 - 3.0));
    s = s + (c[12] * x * (5.0 * z2 - 1.0) + c[13] * z * (x * x - y * y));
    s = s + c[14] * x * (x * x - 3.0 * y * y);
    double kappa = row[L_KAPPA];
    return fmax(kappa + s, kappa * TS_MIN_RADIAL);
}

// Shape quantities of one lesion at an offset (dx, dy, dz) mm from its centre: returns TS_FAR,
// TS_DEEP or TS_NEAR and sets rho, the radial function R, the signed distance (mm) and inside.
TS_DEV int ts_lesion_at(const double* __restrict__ row, double dx, double dy, double dz,
                        double* rho, double* big_r, double* sd, bool* inside) {
    const double* m = row + L_TO_UNIT;
    double qx = m[0] * dx + m[1] * dy + m[2] * dz;
    double qy = m[3] * dx + m[4] * dy + m[5] * dz;
    double qz = m[6] * dx + m[7] * dy + m[8] * dz;
    double r = sqrt(qx * qx + qy * qy + qz * qz);
    *rho = r;
    if (r <= row[L_INNER_RHO] || r < 1e-9) {
        *big_r = -1.0;
        *inside = true;
        return TS_DEEP;
    }
    if (r >= row[L_FAR_RHO]) {
        *inside = false;
        return TS_FAR;
    }
    double R = ts_radial(row, qx / r, qy / r, qz / r);
    *big_r = R;
    *sd = sqrt(dx * dx + dy * dy + dz * dz) * (1.0 - R / r);
    *inside = r <= R;
    return TS_NEAR;
}

// Trilinear interpolation of an (n0, n1, n2) float64 or float32 lattice at fractional indices,
// clamped to the edges (tumorsynth/kernels/cpu/texture.py: _trilinear).
template <typename G>
TS_DEV double ts_trilinear(const G* __restrict__ a, i64 n0, i64 n1, i64 n2, double g0, double g1,
                           double g2) {
    g0 = fmin(fmax(g0, 0.0), n0 - 1.000001);
    g1 = fmin(fmax(g1, 0.0), n1 - 1.000001);
    g2 = fmin(fmax(g2, 0.0), n2 - 1.000001);
    i64 i = (i64)g0, j = (i64)g1, k = (i64)g2;
    double f = g0 - i, g = g1 - j, h = g2 - k;
    i64 s0 = n1 * n2, s1 = n2;
    i64 p = (i * n1 + j) * n2 + k;
    double c00 = (double)a[p] * (1 - h) + (double)a[p + 1] * h;
    double c01 = (double)a[p + s1] * (1 - h) + (double)a[p + s1 + 1] * h;
    double c10 = (double)a[p + s0] * (1 - h) + (double)a[p + s0 + 1] * h;
    double c11 = (double)a[p + s0 + s1] * (1 - h) + (double)a[p + s0 + s1 + 1] * h;
    return (c00 * (1 - g) + c01 * g) * (1 - f) + (c10 * (1 - g) + c11 * g) * f;
}

// The segment l with prefix[l] <= e < prefix[l + 1] (prefix[0] = 0, n segments).
TS_DEV int ts_segment(const i64* __restrict__ prefix, int n, i64 e) {
    int lo = 0, hi = n;
    while (hi - lo > 1) {
        int mid = (lo + hi) >> 1;
        if (prefix[mid] <= e) lo = mid; else hi = mid;
    }
    return lo;
}
