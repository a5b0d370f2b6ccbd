"""Pure-Python references (numpy / torch), written for clarity rather than speed.

The parity tests compare every compiled kernel (CPU and CUDA) with these, one module per kernel
family, and compare these with the established peers (numpy, scipy, MONAI, ...).
"""
