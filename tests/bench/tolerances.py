"""Float tolerances of the benchmark-harness tests, defined once."""

PSNR_DB = 1e-9
"""Our PSNR vs the float64 reference (same quantity, different summation order)."""
MS_SSIM = 2e-5
"""pytorch-msssim in float32 vs the float64 reference implementation."""
BD_RATE_PERCENT = 1e-6
"""BD-rate of exactly scaled curves vs the analytic value."""
COLOR_ROUNDTRIP = 1e-9
"""RGB -> YCbCr -> RGB in float64 before rounding."""
