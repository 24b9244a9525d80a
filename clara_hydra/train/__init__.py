"""Training: build the enabled components with MONAI/PyTorch and run them.

Unlike the pure core (reader, space, convert, resolve), this package imports torch and MONAI.
"""
