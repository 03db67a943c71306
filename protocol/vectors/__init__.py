"""Test vectors: data files, their generator and the interpreter that recomputes them."""
