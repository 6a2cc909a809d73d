"""ICC profiles the tests build byte by byte: Pillow's ImageCms creates only sRGB, Lab
and XYZ profiles, and no CMYK or gray profile is shipped with this machine or Pillow.
Both are small ICC v2 profiles that Little CMS (behind ImageCms) accepts."""

from __future__ import annotations

import itertools
import struct

import numpy as np

_D50 = (0.9642, 1.0, 0.8249)  # the profile connection space's white


def _s15(value: float) -> int:
    return round(value * 65536)


def _profile(device_class: bytes, space: bytes, pcs: bytes, tags: list[tuple[bytes, bytes]]
             ) -> bytes:
    text = b"aec test profile"
    desc = (b"desc" + bytes(4) + struct.pack(">I", len(text) + 1) + text + b"\0"
            + bytes(4 + 4 + 2 + 1 + 67))  # no Unicode or ScriptCode description
    wtpt = b"XYZ " + bytes(4) + struct.pack(">3i", *map(_s15, _D50))
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", b"text" + bytes(4) + b"none\0"),
            *tags]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for signature, body in tags:
        data += bytes(-(offset + len(data)) % 4)  # tags start on 4-byte boundaries
        table += struct.pack(">4sII", signature, offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"none" + bytes([2, 0x10, 0, 0])
              + device_class + space + pcs + bytes(12) + b"acsp" + bytes(28)
              + struct.pack(">3i", *map(_s15, _D50)))
    header += bytes(128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + data


def gray_profile(gamma: float = 2.2) -> bytes:
    """A display profile for gray pixels: one tone curve."""
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))
    return _profile(b"mntr", b"GRAY", b"XYZ ", [(b"kTRC", curve)])


def _lab_of_srgb(rgb: np.ndarray) -> tuple[float, float, float]:
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    to_xyz = np.array([[0.4360747, 0.3850649, 0.1430804],  # sRGB to XYZ, D50
                       [0.2225045, 0.7168786, 0.0606169],
                       [0.0139322, 0.0971045, 0.7141733]])
    xyz = to_xyz @ lin / np.array(_D50)
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def cmyk_profile() -> bytes:
    """A CMYK input profile (a 2-point lut16 grid to Lab) whose inks are not Pillow's
    plain conversion: full black ink is a dark blue-grey (about sRGB 51, 51, 98), not
    black, and full yellow is a pale yellow."""
    grid: list[int] = []
    for c, m, y, k in itertools.product((0, 1), repeat=4):  # the first input slowest
        rgb = np.array([(1 - c) * (1 - 0.8 * k), (1 - m) * (1 - 0.8 * k),
                        (1 - 0.7 * y) * (1 - 0.6 * k)])
        lightness, a, b = _lab_of_srgb(rgb)
        # Lab in ICC v2's 16-bit encoding: L 0..100 -> 0..0xFF00, a and b + 128, x 256.
        grid += [round(lightness / 100 * 0xFF00), round((a + 128) * 256),
                 round((b + 128) * 256)]
    identity = [0, 0xFFFF]
    lut = (b"mft2" + bytes(4) + bytes([4, 3, 2, 0])
           + struct.pack(">9i", 65536, 0, 0, 0, 65536, 0, 0, 0, 65536)
           + struct.pack(">HH", 2, 2) + struct.pack(">8H", *identity * 4)
           + struct.pack(f">{len(grid)}H", *grid) + struct.pack(">6H", *identity * 3))
    return _profile(b"prtr", b"CMYK", b"Lab ", [(b"A2B0", lut)])
