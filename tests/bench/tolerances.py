"""Float tolerances of the benchmark-harness tests (tests/bench and its sub-packages), defined once."""

PSNR_DB = 1e-9
"""Our PSNR vs the float64 reference (same quantity, different summation order)."""
MS_SSIM = 2e-5
"""pytorch-msssim in float32 vs the float64 reference implementation."""
MS_SSIM_SELF = 1e-6
"""MS-SSIM of an image with itself vs exactly 1 (float32 arithmetic)."""
BD_RATE_PERCENT = 1e-6
"""BD-rate of exactly scaled curves vs the analytic value."""
BD_PSNR_DB = 1e-9
"""BD-PSNR of exactly shifted curves vs the analytic shift."""
COLOR_ROUNDTRIP = 1e-9
"""RGB -> YCbCr -> RGB in float64 before rounding."""
COLOR_PUBLISHED = 1e-3
"""YCbCr of a pure colour vs the matrix's published values (given to three decimals)."""
RATE_TARGET_REL = 0.1
"""A rate-targeted codec's bpp vs its target, relative (JPEG 2000's rate control)."""
