"""C++ code for a .proto file with Debian's protoc (no rules_proto offline)."""

load("@rules_cc//cc:defs.bzl", "cc_library")

def cc_proto(name, src, proto_deps = [], deps = [], visibility = None):
    """Generates <src>.pb.{h,cc} with protoc and wraps them as cc_library `name`.

    Args:
      name: the cc_library's name.
      src: the .proto file, in this package.
      proto_deps: other .proto files of this package that `src` imports.
      deps: the cc_proto targets of those imports.
      visibility: as usual.
    """
    base = src[:-len(".proto")]
    native.genrule(
        name = name + "_gen",
        srcs = [src] + proto_deps,
        outs = [base + ".pb.h", base + ".pb.cc"],
        cmd = "protoc --proto_path=. --cpp_out=$(GENDIR) $(location " + src + ")",
    )
    cc_library(
        name = name,
        hdrs = [base + ".pb.h"],
        srcs = [base + ".pb.cc"],
        deps = deps + ["@system//:protobuf"],
        visibility = visibility,
    )
