"""Pure wire protocols: bytes in, frames and rejections out; no I/O, no clocks, no threads."""
