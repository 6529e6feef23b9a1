"""The packed layout of one lesion: a float64 row that every kernel (numba, NumPy, CUDA) reads.

Kernels take plain arrays, not objects, so the per-lesion parameters are packed once on the host into
a row of ``N_FIELDS`` float64 values at the indices below (filled by ``tumorsynth.engine.packing``).
"""

CENTER = 0  # 3: centre, mm from voxel (0, 0, 0)
TO_UNIT = 3  # 9: row-major matrix taking mm offsets to unit-ball coordinates
KAPPA = 12  # volume-preserving scale of the radial function
DEFORM = 13  # 15: kappa * spherical-harmonic coefficients
R_LO = 28  # lower bound of the radial function
R_HI = 29  # upper bound of the radial function
A_MIN = 30  # smallest semi-axis, mm
EDGE_SIGMA = 31  # edge blur, mm
DELTA_HU = 32  # signed amplitude, HU
NECRO_RHO = 33  # necrotic core radius in unit-ball coordinates (0: none)
NECRO_DELTA = 34  # core HU minus organ HU
MASS_K = 35  # mass-effect strength (0: none)
MASS_REACH = 36  # mass-effect reach beyond the surface, mm
CAPS_T = 37  # capsule thickness, mm (0: none)
CAPS_HU = 38  # capsule HU relative to the organ
TEX_H = 39  # texture lattice spacing, mm
TEX_LO = 40  # 3: index of the lattice's first node along X, Y, Z
TEX_N = 43  # 3: lattice nodes along X, Y, Z
TEX_OFFSET = 46  # start of this lesion's lattice in the flat texture buffer
FAR_RHO = 47  # beyond this unit-ball radius the lesion changes nothing
INNER_RHO = 48  # below this radius the voxel is deep inside (weight 1, no capsule)
REPLACE = 49  # 1: the tumour's tissue replaces the host's (0: its contrast is added to the host)
ORGAN_HU = 50  # the organ's level, HU: the tissue a replacing tumour starts from
GRAIN_HU = 51  # standard deviation of the scan's noise, HU, given to a replacing tumour's tissue
GRAIN_WHITE = 52  # weight of the grain's white part, sqrt(1 - GRAIN_MIX^2)
GRAIN_MIX = 53  # weight of its smooth part (neighbours correlate GRAIN_MIX^2 / 2)
GRAIN_SEED = 54  # 2: 32-bit seeds of the grain's white and smooth parts
EXOPHYTIC = 56  # 1: the lesion also changes voxels outside the organ (within its own reach)
N_FIELDS = 57

NECRO_SOFT = 0.08  # softness of the necrotic core's edge, unit-ball units
EDGE_REACH = 3.0  # the edge weight is exactly 0 / 1 beyond 3 edge sigmas (Phi(-3) = 0.0013)
EDGE_STEPS = 64  # cubic pieces per sigma of the edge weight's table (tumorsynth.kernels.edge)
CAPS_IN, CAPS_OUT = (
    2.5,
    1.5,
)  # the capsule profile spans -2.5 to +1.5 thicknesses around the surface

# render tiles: the blocks of voxels the kernels take one at a time
TILE = 16  # voxels per side of a GPU render tile (the CUDA kernels' block of voxels)
# voxels per axis of a CPU render tile: rows along z as long as the volume's (up to 256) spread each
# lesion's per-row set-up over more voxels (the kernel runs 20-25 % faster than with 16^3 tiles on
# the mix presets, with the same output)
CPU_TILE = (8, 32, 256)
