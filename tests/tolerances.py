"""Float tolerances of the tests, defined once (tests whose tolerance is part of what they
state, e.g. a 1 % rate bound of the coder, keep it inline next to the claim)."""

TOL_F64 = 1e-10
"""float64 values and gradients against an exact or brute-force reference."""
TOL_F32 = 1e-4
"""float32 computations against a float64 reference."""

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
