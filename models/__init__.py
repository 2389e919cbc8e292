"""models package: EarthGPT (torch, transformers, Lightning)."""

from models.numerics import pin_instruction_set

pin_instruction_set()  # before torch loads: the same kernels on every machine (models/numerics.py)
