"""Builds the C core and its Cython bindings (metadata lives in pyproject.toml)."""
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

# every stage of the C core (csrc/*.c; one file per stage, docs/DESIGN.md)
C_SOURCES = sorted(f for f in os.listdir("csrc") if f.endswith(".c"))
# PJ2K_CFLAGS lets sanitizer and profiling builds replace the release flags;
# -ffp-contract=off stays: fused multiply-adds would change lossy decodes
# (docs/FORMAT.md 4 fixes their float64 arithmetic).
CFLAGS = os.environ.get("PJ2K_CFLAGS", "-O3 -std=c11 -fno-trapping-math -Wall -Wextra").split() + [
    "-ffp-contract=off"]

extension = Extension(
    "progressive_j2k._core",
    sources=["src/progressive_j2k/_core.pyx"] + [os.path.join("csrc", s) for s in C_SOURCES],
    include_dirs=["csrc/include", "csrc"],
    extra_compile_args=CFLAGS,
    depends=[os.path.join("csrc", f) for f in os.listdir("csrc") if f.endswith(".h")]
    + ["csrc/include/progressive_j2k.h"],
)

setup(ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}))
