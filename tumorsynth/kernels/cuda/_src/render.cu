// The fused render kernel (tumorsynth/kernels/cpu/render.py: render_lesions) and the output copy.
//
// One thread per voxel of the tiles that cover the lesions' reach, for all lesions of a volume, or
// of a batch of volumes, in a single launch: block b handles part of tile b / blocks_per_tile, and
// each voxel composites the short list of lesions that may reach its tile. Tiles are at most
// 2^lx x 2^ly x 2^lz voxels (the packing's tile, rounded up to powers of two).

// Blurred edge within EDGE_REACH sigmas: Phi(-sd / sigma) from the cubic pieces of TS_EDGE_TABLE
// (tumorsynth/kernels/edge.py), operation for operation as cpu/effects.py: edge_weight.
TS_DEV double ts_edge_weight(double sd, double sigma) {
    double g = (sd / sigma + L_EDGE_REACH) * L_EDGE_STEPS;
    int k = min((int)g, TS_EDGE_PIECES - 1);
    double t = g - k;
    const double* c = TS_EDGE_TABLE[k];
    return c[0] + t * (c[1] + t * (c[2] + t * c[3]));
}

// The scan's noise grain given to a replacing lesion's tissue at voxel (x, y, z), HU, operation for
// operation as cpu/effects.py: grain (a white part of three uniforms, a smooth part of eight
// corner values).
TS_DEV double ts_grain(const double* __restrict__ row, i64 x, i64 y, i64 z) {
    u32 h = ts_hash((u32)row[L_GRAIN_SEED], x, y, z);
    double white = (ts_unit_noise(h) + ts_unit_noise(ts_mix(h ^ 1u)) + ts_unit_noise(ts_mix(h ^ 2u))) *
                   TS_INV_SQRT3;
    double mix = row[L_GRAIN_MIX];
    if (mix == 0.0) return row[L_GRAIN_HU] * (row[L_GRAIN_WHITE] * white);
    u32 seed = (u32)row[L_GRAIN_SEED + 1];
    double s = 0.0;
    for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
            for (int c = 0; c < 2; ++c) s = s + ts_unit_noise(ts_hash(seed, x + a, y + b, z + c));
    return row[L_GRAIN_HU] * (row[L_GRAIN_WHITE] * white + mix * (s * TS_INV_SQRT8));
}

// HU change of one lesion at voxel (x, y, z), given its edge weight and capsule profile, as
// a - b * base of the host's value base (*b is 0 but for a replacing lesion): cpu/effects.py blend
// and blend_replace.
TS_DEV double ts_appearance(const double* __restrict__ row, const float* __restrict__ tex, double dx,
                            double dy, double dz, double rho, double w, double cap, int x, int y,
                            int z, double* b) {
    double h = row[L_TEX_H];
    i64 n0 = (i64)row[L_TEX_N], n1 = (i64)row[L_TEX_N + 1], n2 = (i64)row[L_TEX_N + 2];
    const float* grid = tex + (i64)row[L_TEX_OFFSET];
    double t = ts_trilinear(grid, n0, n1, n2, dx / h - row[L_TEX_LO], dy / h - row[L_TEX_LO + 1],
                            dz / h - row[L_TEX_LO + 2]);
    double core = row[L_NECRO_RHO];
    double n = 0.0;
    if (core > 0.0) n = 0.5 * erfc((rho - core) / (L_NECRO_SOFT * TS_SQRT2));
    if (row[L_REPLACE] != 0.0) {
        double level = row[L_ORGAN_HU] + ts_grain(row, x, y, z);
        double a = w * (level + row[L_DELTA_HU] * t);
        double hold = w;
        if (n > 0.0) {
            double nw = n * w;
            a = a + nw * (level + row[L_NECRO_DELTA] - a);
            hold = hold + nw * (1.0 - hold);
        }
        if (cap > 0.0) {
            a = a + cap * (level + row[L_CAPS_HU] - a);
            hold = hold + cap * (1.0 - hold);
        }
        *b = hold;
        return a;
    }
    double d = w * row[L_DELTA_HU] * t;
    if (n > 0.0) d = d + n * w * (row[L_NECRO_DELTA] - d);
    if (cap > 0.0) d = d + cap * (row[L_CAPS_HU] - d);
    *b = 0.0;
    return d;
}

// Radial factor f of the mass effect: the tissue now at offset d came from offset f * d.
TS_DEV double ts_mass_factor(const double* __restrict__ row, double rho, double big_r, double sd,
                             bool inside) {
    double k = row[L_MASS_K];
    if (k <= 0.0) return 1.0;
    if (inside) return cbrt(1.0 - k);
    double reach = row[L_MASS_REACH];
    if (sd >= reach) return 1.0;
    double rn = rho / big_r;
    double u = rn - cbrt(rn * rn * rn - k);
    double q = sd / reach;
    double t = 1.0 - q * q;
    return (rn - u * t * t) / rn;
}

// Trilinear sample of the image at voxel coordinates; false when the nearest voxel is outside the
// organ (tissue is never pulled in from outside).
template <typename T>
TS_DEV bool ts_sample(const T* __restrict__ image, const u8* __restrict__ organ, int n0, int n1,
                      int n2, double x, double y, double z, double* value) {
    x = fmin(fmax(x, 0.0), n0 - 1.0);
    y = fmin(fmax(y, 0.0), n1 - 1.0);
    z = fmin(fmax(z, 0.0), n2 - 1.0);
    if (organ[((i64)(int)(x + 0.5) * n1 + (int)(y + 0.5)) * n2 + (int)(z + 0.5)] == 0) return false;
    int i = min((int)x, n0 - 2), j = min((int)y, n1 - 2), k = min((int)z, n2 - 2);
    double f = x - i, g = y - j, h = z - k;
    i64 s0 = (i64)n1 * n2, s1 = n2;
    i64 p = ((i64)i * n1 + j) * n2 + k;
    double c00 = (double)image[p] * (1 - h) + (double)image[p + 1] * h;
    double c01 = (double)image[p + s1] * (1 - h) + (double)image[p + s1 + 1] * h;
    double c10 = (double)image[p + s0] * (1 - h) + (double)image[p + s0 + 1] * h;
    double c11 = (double)image[p + s0 + s1] * (1 - h) + (double)image[p + s0 + s1 + 1] * h;
    *value = (c00 * (1 - g) + c01 * g) * (1 - f) + (c10 * (1 - g) + c11 * g) * f;
    return true;
}

template <typename T>
__global__ void ts_render(
    const T* __restrict__ image, const u8* __restrict__ organ,  // (B, X, Y, Z)
    float* __restrict__ out, u8* __restrict__ label,            // (B, X, Y, Z)
    const int n0, const int n1, const int n2,
    const double s0, const double s1, const double s2,          // spacing when item_spacing is null
    const double* __restrict__ item_spacing,                   // (B, 3) or null
    const double* __restrict__ rows,                           // (L, N_FIELDS)
    const i64* __restrict__ tiles,                             // (T, 6) voxel boxes [lo, hi)
    const i64* __restrict__ tile_ptr,                          // (T + 1,)
    const i64* __restrict__ tile_lesions,                      // lesions of tile t: ptr[t]:ptr[t+1]
    const int* __restrict__ tile_item,                         // (T,) batch item, or null: item 0
    const float* __restrict__ tex,                             // texture lattices, flat
    const int log2x, const int log2y, const int log2z, const int blocks_per_tile) {
    const i64 t = blockIdx.x / blocks_per_tile;
    const int v = (blockIdx.x % blocks_per_tile) * blockDim.x + threadIdx.x;
    const int lz = v & ((1 << log2z) - 1), ly = (v >> log2z) & ((1 << log2y) - 1);
    const int lx = v >> (log2z + log2y);
    if (lx >= (1 << log2x)) return;
    const i64* box = tiles + 6 * t;
    const int x = (int)box[0] + lx, y = (int)box[1] + ly, z = (int)box[2] + lz;
    if (x >= box[3] || y >= box[4] || z >= box[5]) return;
    const i64 item = tile_item ? tile_item[t] : 0;
    const i64 offset = item * ((i64)n0 * n1 * n2);
    const i64 idx = offset + ((i64)x * n1 + y) * n2 + z;
    // outside the organ only an exophytic lesion changes anything (cpu/slab.py: collect)
    const bool in_organ = organ[idx] != 0;
    double sp0 = s0, sp1 = s1, sp2 = s2;
    if (item_spacing) {
        sp0 = item_spacing[3 * item];
        sp1 = item_spacing[3 * item + 1];
        sp2 = item_spacing[3 * item + 2];
    }
    const double px = x * sp0, py = y * sp1, pz = z * sp2;
    double ux = 0.0, uy = 0.0, uz = 0.0, best_key = 0.0, best_d = 0.0, best_hold = 0.0;
    bool tumour = false, touched = false;
    for (i64 q = tile_ptr[t]; q < tile_ptr[t + 1]; ++q) {
        const double* row = rows + tile_lesions[q] * L_N_FIELDS;
        if (!in_organ && row[L_EXOPHYTIC] == 0.0) continue;
        double dx = px - row[L_CENTER], dy = py - row[L_CENTER + 1], dz = pz - row[L_CENTER + 2];
        double rho, big_r, sd = 0.0;
        bool inside;
        int state = ts_lesion_at(row, dx, dy, dz, &rho, &big_r, &sd, &inside);
        if (state == TS_FAR) continue;
        touched = true;
        double f = ts_mass_factor(row, rho, big_r, sd, inside);
        ux = ux + dx * (f - 1.0);
        uy = uy + dy * (f - 1.0);
        uz = uz + dz * (f - 1.0);
        tumour = tumour || inside;
        double sigma = row[L_EDGE_SIGMA], w, cap = 0.0;
        if (state == TS_DEEP || sd <= -L_EDGE_REACH * sigma) {
            w = 1.0;
        } else if (sd >= L_EDGE_REACH * sigma) {
            w = 0.0;
        } else {
            w = ts_edge_weight(sd, sigma);
        }
        double thickness = row[L_CAPS_T];
        if (state == TS_NEAR && thickness > 0.0 && -L_CAPS_IN * thickness < sd &&
            sd < L_CAPS_OUT * thickness) {
            double a = (sd + 0.5 * thickness) / (0.5 * thickness);
            cap = exp(-0.5 * (a * a));
        }
        double key = cap > w ? cap : w;
        if (key > best_key) {
            best_key = key;
            best_d = ts_appearance(row, tex, dx, dy, dz, rho, w, cap, x, y, z, &best_hold);
        }
    }
    if (!touched) return;
    double base = (double)image[idx];
    if (in_organ && (ux != 0.0 || uy != 0.0 || uz != 0.0)) {  // tissue moves only in the organ
        double moved;
        if (ts_sample(image + offset, organ + offset, n0, n1, n2, x + ux / sp0, y + uy / sp1,
                      z + uz / sp2, &moved))
            base = moved;
    }
    out[idx] = best_hold == 0.0 ? (float)(base + best_d) : (float)(base + (best_d - best_hold * base));
    if (tumour) label[idx] = 2;
}

// out = float32(image), label = organ, element by element.
template <typename T>
__global__ void ts_copy(const T* __restrict__ image, const u8* __restrict__ organ,
                        float* __restrict__ out, u8* __restrict__ label, const i64 n) {
    for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
        out[i] = (float)image[i];
        label[i] = organ[i];
    }
}

// The same for float32 images, 4 voxels per thread and step (one 16-byte image load, one 4-byte
// mask load), coalesced across the warp, four steps in flight (n4 = n / 4; image and out 16-byte,
// organ and label 4-byte aligned).
extern "C" __global__ void ts_copy_f32x4(const float4* __restrict__ image,
                                         const unsigned* __restrict__ organ,
                                         float4* __restrict__ out, unsigned* __restrict__ label,
                                         const i64 n4) {
    const i64 stride = (i64)gridDim.x * blockDim.x;
    i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x;
    for (; i + 3 * stride < n4; i += 4 * stride) {
        float4 a0 = image[i], a1 = image[i + stride], a2 = image[i + 2 * stride],
               a3 = image[i + 3 * stride];
        unsigned m0 = organ[i], m1 = organ[i + stride], m2 = organ[i + 2 * stride],
                 m3 = organ[i + 3 * stride];
        out[i] = a0;
        out[i + stride] = a1;
        out[i + 2 * stride] = a2;
        out[i + 3 * stride] = a3;
        label[i] = m0;
        label[i + stride] = m1;
        label[i + 2 * stride] = m2;
        label[i + 3 * stride] = m3;
    }
    for (; i < n4; i += stride) {
        out[i] = image[i];
        label[i] = organ[i];
    }
}
