#!/usr/bin/env python3
"""Writes the small data fixtures in testdata/ (run once; the outputs are committed).

testdata/idx/tiny-{images-idx3,labels-idx1}-ubyte.gz      valid, 20 images of 28x28, labels 0..9
testdata/corrupt/bad_magic-images-idx3-ubyte.gz           image magic 0x804 instead of 0x803
testdata/corrupt/truncated-images-idx3-ubyte.gz           gzip stream cut in the middle
testdata/corrupt/short-images-idx3-ubyte.gz               header says 20 images, data holds 19
testdata/corrupt/mismatch-labels-idx1-ubyte.gz            19 labels (pairs with tiny images)
testdata/corrupt/cifar_short.bin                          3072 bytes: not a multiple of 3073
testdata/corrupt/not_an_image.png                         text with a .png name
"""
import gzip
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")


def images(n, magic=0x803, count=None):
    count = n if count is None else count
    header = struct.pack(">IIII", magic, count, 28, 28)
    pixels = bytes((i * 7 + j) % 256 for i in range(n) for j in range(28 * 28))
    return header + pixels


def labels(n):
    return struct.pack(">II", 0x801, n) + bytes(i % 10 for i in range(n))


def write_gz(path, data):
    # mtime=0 keeps the files byte-identical across regenerations.
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(data)


def main():
    os.makedirs(os.path.join(ROOT, "idx"), exist_ok=True)
    os.makedirs(os.path.join(ROOT, "corrupt"), exist_ok=True)
    write_gz(os.path.join(ROOT, "idx", "tiny-images-idx3-ubyte.gz"), images(20))
    write_gz(os.path.join(ROOT, "idx", "tiny-labels-idx1-ubyte.gz"), labels(20))
    c = os.path.join(ROOT, "corrupt")
    write_gz(os.path.join(c, "bad_magic-images-idx3-ubyte.gz"), images(20, magic=0x804))
    full = open(os.path.join(ROOT, "idx", "tiny-images-idx3-ubyte.gz"), "rb").read()
    with open(os.path.join(c, "truncated-images-idx3-ubyte.gz"), "wb") as f:
        f.write(full[: len(full) // 2])
    write_gz(os.path.join(c, "short-images-idx3-ubyte.gz"), images(19, count=20))
    write_gz(os.path.join(c, "mismatch-labels-idx1-ubyte.gz"), labels(19))
        f.write(images(20))
    with open(os.path.join(c, "cifar_short.bin"), "wb") as f:
        f.write(bytes(3072))
    with open(os.path.join(c, "not_an_image.png"), "w") as f:
        f.write("this is not a PNG file\n")


if __name__ == "__main__":
    main()
