"""What SimpleITK's NIfTI reader does not say: the header's promise, and the non-finite voxels.

ITK reads NIfTI through ``nifti1_io``, whose ``nifti_read_buffer`` sets every NaN or infinite
float voxel to 0 without a word: a float CT with NaN outside the organ would come back as a CT
of whole HU with zeros there. :func:`nonfinite_voxels` finds those voxels in the file itself, so
that the reader can put them back (and the writers refuse or note them).
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["NiftiHeader", "nifti_header", "nonfinite_voxels"]

# NIfTI datatype codes of floating-point voxels, as NumPy types
_FLOATS = {16: "f4", 64: "f8"}
_CHUNK_VOXELS = 1 << 22


@dataclass(frozen=True)
class NiftiHeader:
    """The fields of a NIfTI-1 or NIfTI-2 header that locate and scale the voxels."""

    endian: str
    datatype: int
    bitpix: int
    shape: tuple[int, ...]
    vox_offset: int
    scl_slope: float
    scl_inter: float

    @property
    def data_bytes(self) -> int:
        """``vox_offset`` + the voxel bytes: what a complete file holds (uncompressed)."""
        n_voxels = int(np.prod(self.shape, dtype=np.int64))
        return self.vox_offset + n_voxels * self.bitpix // 8


def nifti_header(header: bytes) -> NiftiHeader | None:
    """The header's fields (NIfTI-1 or -2, either byte order), or None if ``header`` (the file's
    first 540 bytes or more) is not one."""
    for e in "<>":
        size = struct.unpack(e + "i", header[:4])[0] if len(header) >= 4 else 0
        if size == 348 and len(header) >= 348:
            datatype, bitpix = struct.unpack(e + "2h", header[70:74])
            dim = struct.unpack(e + "8h", header[40:56])
            offset = max(int(struct.unpack(e + "f", header[108:112])[0]), 352)
            slope, inter = struct.unpack(e + "2f", header[112:120])
            break
        if size == 540 and len(header) >= 540:
            datatype, bitpix = struct.unpack(e + "2h", header[12:16])
            dim = struct.unpack(e + "8q", header[16:80])
            offset = max(struct.unpack(e + "q", header[168:176])[0], 544)
            slope, inter = struct.unpack(e + "2d", header[176:192])
            break
    else:
        return None
    ndim = min(max(int(dim[0]), 0), 7)
    shape = tuple(max(int(n), 1) for n in dim[1 : ndim + 1])
    return NiftiHeader(e, int(datatype), int(bitpix), shape, int(offset), slope, inter)


def nonfinite_voxels(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The NaN and infinite voxels of a float NIfTI file, as SimpleITK's reader hides them.

    Returns
    -------
    (index, values) or None
        Flat indices in file order (x fastest: the order of SimpleITK's (Z, Y, X) array, flat)
        and the values, scaled as the header says; None when the file is not a float NIfTI or
        holds no such voxel.
    """
    name = path.name.lower()
    gz = name.endswith(".nii.gz")
    if not gz and not name.endswith(".nii"):
        return None
    with gzip.open(path, "rb") if gz else open(path, "rb") as f:
        header = nifti_header(f.read(544))
        if header is None or header.datatype not in _FLOATS:
            return None
        dtype = np.dtype(header.endian + _FLOATS[header.datatype])
        f.seek(header.vox_offset)
        found, values, start = [], [], 0
        while chunk := f.read(_CHUNK_VOXELS * dtype.itemsize):
            data = np.frombuffer(chunk[: len(chunk) // dtype.itemsize * dtype.itemsize], dtype)
            bad = np.flatnonzero(~np.isfinite(data))
            found.append(bad + start)
            values.append(data[bad])
            start += data.size
    index = np.concatenate(found) if found else np.zeros(0, np.int64)
    if not index.size:
        return None
    value = np.concatenate(values).astype(np.float64)
    if header.scl_slope not in (0.0, 1.0) and np.isfinite(header.scl_slope):
        value = value * header.scl_slope  # NaN stays NaN, an infinity may change sign
    return index, value
