#!/usr/bin/env python3
"""Converts a GIMP pattern (.pat) file into an 8-bit RGB PNG.

Usage: pat2png.py INPUT.pat OUTPUT.png

Used once to make the style images in testdata/ from Debian's gimp-data package; the PNG
encoder is written with zlib so no imaging library is needed.
"""
import struct
import sys
import zlib


def read_pat(path):
    with open(path, "rb") as f:
        data = f.read()
    header_size, version, width, height, depth = struct.unpack(">IIIII", data[:20])
    if data[20:24] != b"GPAT" or version != 1:
        raise ValueError(f"{path}: not a GIMP pattern (magic {data[20:24]!r}, version {version})")
    pixels = data[header_size:header_size + width * height * depth]
    if len(pixels) != width * height * depth:
        raise ValueError(f"{path}: truncated pixel data")
    rgb = bytearray()
    for i in range(width * height):
        px = pixels[i * depth:(i + 1) * depth]
        if depth in (1, 2):
            rgb += bytes([px[0]] * 3)
        else:
            rgb += px[:3]
    return width, height, bytes(rgb)


def write_png(path, width, height, rgb):
    def chunk(tag, body):
        return (struct.pack(">I", len(body)) + tag + body +
                struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF))
    raw = b"".join(b"\x00" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    png = (b"\x89PNG\r\n\x1a\n" +
           chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(png)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: pat2png.py INPUT.pat OUTPUT.png")
    w, h, rgb = read_pat(sys.argv[1])
    write_png(sys.argv[2], w, h, rgb)
    print(f"{sys.argv[2]}: {w}x{h}")
