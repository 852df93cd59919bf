"""Torch-free bitstream layer: the .lq container and ANS coding of integer symbols."""
