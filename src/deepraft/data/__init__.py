"""Training data: folder layouts, deterministic crops, and the paper's preprocessing."""

from .datasets import PhotoCrops, StepBatches, find_images, sample_seed
from .prepare import prepare_folder

__all__ = ["PhotoCrops", "StepBatches", "find_images", "prepare_folder", "sample_seed"]
