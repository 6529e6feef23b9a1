"""One lesion's effect on one slab of a render tile (the rows of one x), in three passes.

Most of the render's arithmetic is spent on the voxels near a lesion's surface: the radial
function, a division, a square root and the edge weight for each. Along one row only a handful of
voxels lie there, too few for vector instructions. So each lesion's voxels in all rows of the slab
are first sorted out (:func:`collect`), then the surface voxels' shape terms are computed in loops
without branches, which the compiler vectorises (:func:`shell_terms`), and last every voxel's
effect is added to the slab's buffers (:func:`apply`). Each voxel gets the same arithmetic as it
would alone, so the image is the same, bit for bit; the kernel takes 0.82x the time it took with
one pass per row (one thread, ``syntumor`` mix).

The buffers of a slab of ``ny`` rows of ``nz`` voxels are flat, voxel ``(y0 + r, z0 + c)`` at
``r * nz + c``. Collected voxels are entries of ``idx[kind]`` (slab index, row) and ``val[kind]``
(the fields below), ``kind`` 0 for voxels deep inside and 1 for those near the surface ("shell").
"""

from __future__ import annotations

import math

from numba import njit

from tumorsynth.kernels.cpu.bounds import cell_of
from tumorsynth.kernels.cpu.effects import (
    blend,
    blend_replace,
    capsule_profile,
    edge_weight,
    grain,
    mass_factor,
    necrosis_weight,
)
from tumorsynth.kernels.cpu.shape import cbrt, radial
from tumorsynth.kernels.layout import (
    CAPS_HU,
    CAPS_T,
    CENTER,
    DELTA_HU,
    EDGE_SIGMA,
    EXOPHYTIC,
    INNER_RHO,
    MASS_K,
    MASS_REACH,
    NECRO_DELTA,
    NECRO_RHO,
    ORGAN_HU,
    REPLACE,
    TEX_H,
    TEX_LO,
    TEX_N,
    TEX_OFFSET,
    TO_UNIT,
)

# fields of ``val``: unit-ball coordinates, their radius, the z offset from the centre (mm) and,
# for shell voxels, the squared distance from the centre (mm^2), then what shell_terms computes
QX, QY, QZ, RHO, DZ, D2, BIG_R, SD, W = range(9)
N_VAL = 9
# fields of ``row_f`` (per row of the slab): offsets from the centre (mm)
DX, DY = range(2)
N_ROW = 2


# error_model="numpy": IEEE division without Python's zero-divisor checks (no divisor here is zero;
# the checks cost the hot loops 5 %)
@njit(cache=True, error_model="numpy")
def collect(organ, spacing, rows, bounds, far, i, tex, x, y0, span_a, span_b, z0, nz, idx, val,
            row_f, row_tex):  # fmt: skip
    """Sort lesion ``i``'s voxels in the slab: deep inside, near the surface, or out of reach.

    Row ``r`` is searched over voxels z in ``[span_a[r], span_b[r])``; organ voxels within unit-ball
    radius ``far`` are kept (and the voxels outside the organ too, for an exophytic lesion).
    ``bounds`` (:func:`~tumorsynth.kernels.cpu.bounds.radial_bounds`)
    tells, per direction, those deep inside or out of reach without evaluating the shape. Also
    fills the rows' constants: ``row_f`` and, in ``row_tex[r, t]``, the texture lattice ``tex``
    interpolated (bilinearly, in x and y) to the row at each of its nodes t along z that the span
    reaches, so that each voxel reads two values instead of eight. Returns the number of deep and of
    shell voxels.
    """
    n_deep = n_shell = 0
    cz, sz = rows[i, CENTER + 2], spacing[2]
    m = TO_UNIT
    ax, ay, az = rows[i, m + 2], rows[i, m + 5], rows[i, m + 8]
    inner = rows[i, INNER_RHO]
    organ_only = rows[i, EXOPHYTIC] == 0.0
    h = rows[i, TEX_H]
    inv_h, tex_lo = 1.0 / h, rows[i, TEX_LO + 2]
    n0, n1, n2 = int(rows[i, TEX_N]), int(rows[i, TEX_N + 1]), int(rows[i, TEX_N + 2])
    dx = x * spacing[0] - rows[i, CENTER]
    g0 = min(max(dx / h - rows[i, TEX_LO], 0.0), n0 - 1.000001)
    t0 = int(g0)
    f0 = g0 - t0
    for r in range(span_a.size):
        a, b = span_a[r], span_b[r]
        if a >= b:
            continue
        dy = (y0 + r) * spacing[1] - rows[i, CENTER + 1]
        q0x = rows[i, m] * dx + rows[i, m + 1] * dy
        q0y = rows[i, m + 3] * dx + rows[i, m + 4] * dy
        q0z = rows[i, m + 6] * dx + rows[i, m + 7] * dy
        g1 = min(max(dy / h - rows[i, TEX_LO + 1], 0.0), n1 - 1.000001)
        t1 = int(g1)
        f1 = g1 - t1
        row_f[DX, r], row_f[DY, r] = dx, dy
        w00, w01, w10, w11 = (1 - f0) * (1 - f1), (1 - f0) * f1, f0 * (1 - f1), f0 * f1
        t_a = texture_node(a * sz - cz, inv_h, tex_lo, n2)[0]
        t_b = texture_node((b - 1) * sz - cz, inv_h, tex_lo, n2)[0] + 2  # the nodes the span needs
        k00 = int(rows[i, TEX_OFFSET]) + (t0 * n1 + t1) * n2  # node (t0, t1, 0) in ``tex``
        k01, k10, k11 = k00 + n2, k00 + n1 * n2, k00 + n1 * n2 + n2
        # indices, not views: a view of ``tex`` (shared by the threads) changes its reference count
        for t in range(t_a, t_b):
            v = w00 * tex[k00 + t] + w01 * tex[k01 + t] + w10 * tex[k10 + t]
            row_tex[r, t] = v + w11 * tex[k11 + t]
        in_plane2 = dx * dx + dy * dy
        for z in range(a, b):
            if organ_only and organ[x, y0 + r, z] == 0:
                continue
            dz = z * sz - cz
            qx, qy, qz = q0x + dz * ax, q0y + dz * ay, q0z + dz * az
            rho = math.sqrt(qx * qx + qy * qy + qz * qz)
            if rho >= far:
                continue
            deep = rho <= inner or rho < 1e-9
            if not deep:
                face, ci, cj = cell_of(qx, qy, qz)
                if rho >= bounds[i, face, ci, cj, 1]:
                    continue
                deep = rho <= bounds[i, face, ci, cj, 0]
            if deep:
                kind, e = 0, n_deep
                n_deep += 1
            else:
                kind, e = 1, n_shell
                n_shell += 1
                val[1, QX, e], val[1, QY, e], val[1, QZ, e] = qx, qy, qz
                val[1, D2, e] = in_plane2 + dz * dz
            idx[kind, 0, e], idx[kind, 1, e] = r * nz + z - z0, r
            val[kind, RHO, e], val[kind, DZ, e] = rho, dz
    return n_deep, n_shell


@njit(cache=True, error_model="numpy")
def shell_terms(rows, i, shell, n):
    """Radius of the deformed surface, signed distance to it (mm) and edge weight of the first
    ``n`` shell voxels ``shell`` (``val[1]``).

    Loops without branches (the edge weight's become selects) over arrays from their first entry:
    the compiler vectorises them (a loop from an offset ran at the speed of scalar code).
    """
    sigma = rows[i, EDGE_SIGMA]
    qx, qy, qz, rho, d2 = shell[QX], shell[QY], shell[QZ], shell[RHO], shell[D2]
    big_r, sd, w = shell[BIG_R], shell[SD], shell[W]
    for e in range(n):
        inv_rho = 1.0 / rho[e]  # one division, reused
        big_r[e] = radial(rows, i, qx[e] * inv_rho, qy[e] * inv_rho, qz[e] * inv_rho)
        sd[e] = math.sqrt(d2[e]) * (1.0 - big_r[e] * inv_rho)
    for e in range(n):
        w[e] = edge_weight(sd[e], sigma)


@njit(cache=True, inline="always")
def texture_node(dz, inv_h, tex_lo, n):
    """Texture lattice node below an offset ``dz`` mm from the centre along z, and the fraction of the
    way to the next (the lattice's ``n`` nodes along z start at ``tex_lo`` steps of ``1 / inv_h``
    mm; clamped to its ends)."""
    g = min(max(dz * inv_h - tex_lo, 0.0), n - 1.000001)
    t = int(g)
    return t, g - t


@njit(cache=True, error_model="numpy")
def apply(rows, i, idx, val, n_deep, n_shell, row_f, row_tex, key, dhu, hold, disp, state, moves,
          voxel):  # fmt: skip
    """Add lesion ``i``'s effect on the collected voxels to the slab's buffers.

    ``key``/``dhu``/``hold``: strongest weight so far and its HU change, ``dhu - hold * base`` of
    the host's value ``base`` (``hold`` is 0 but for a lesion whose tissue replaces the host's; a
    voxel belongs to the lesion it is most inside); ``disp``: summed mass-effect displacement, mm;
    ``state``: bit 1 touched, bit 2 tumour (0: the other buffers' entries are not set yet). ``disp``
    is left alone unless ``moves`` (some lesion of the tile displaces tissue; otherwise nothing
    reads it). ``voxel``: the slab's x, first y and first z, and its rows' length (for the grain).
    """
    delta = rows[i, DELTA_HU]
    core, core_delta = rows[i, NECRO_RHO], rows[i, NECRO_DELTA]
    k, reach = rows[i, MASS_K], rows[i, MASS_REACH]
    f_in = cbrt(1.0 - k) if k > 0.0 else 1.0
    thick, caps_hu = rows[i, CAPS_T], rows[i, CAPS_HU]
    inv_h, tex_lo, n2 = 1.0 / rows[i, TEX_H], rows[i, TEX_LO + 2], int(rows[i, TEX_N + 2])
    replace, organ_hu = rows[i, REPLACE] != 0.0, rows[i, ORGAN_HU]
    x, y0, z0, nz = voxel
    for kind in range(2):
        n = n_deep if kind == 0 else n_shell
        for e in range(n):
            j, r = idx[kind, 0, e], idx[kind, 1, e]
            rho, dz = val[kind, RHO, e], val[kind, DZ, e]
            if kind == 0:
                inside, w, cap, f = True, 1.0, 0.0, f_in
            else:
                big_r, sd, w = val[1, BIG_R, e], val[1, SD, e], val[1, W, e]
                inside = rho <= big_r
                cap = capsule_profile(sd, thick)
                f = mass_factor(rho, big_r, sd, inside, k, reach)
            if state[j] == 0:  # first touched: its buffers' entries start at 0
                key[j] = 0.0
                dhu[j] = 0.0
                hold[j] = 0.0
                if moves:
                    disp[j, 0] = disp[j, 1] = disp[j, 2] = 0.0
            if f != 1.0:
                disp[j, 0] += row_f[DX, r] * (f - 1.0)
                disp[j, 1] += row_f[DY, r] * (f - 1.0)
                disp[j, 2] += dz * (f - 1.0)
            state[j] |= 3 if inside else 1
            weight = max(w, cap)
            if weight > key[j]:
                key[j] = weight
                necrosis = necrosis_weight(rho, core)
                t, frac = texture_node(dz, inv_h, tex_lo, n2)
                texture = row_tex[r, t] * (1.0 - frac) + row_tex[r, t + 1] * frac
                if replace:
                    level = organ_hu + grain(rows, i, x, y0 + r, j - r * nz + z0)
                    dhu[j], hold[j] = blend_replace(
                        w, delta, texture, necrosis, core_delta, cap, caps_hu, level
                    )
                else:
                    dhu[j] = blend(w, delta, texture, necrosis, core_delta, cap, caps_hu)
                    hold[j] = 0.0
