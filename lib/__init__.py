"""Notebook-first research workspace for conditional image generation with GANs"""

__version__ = "0.0.1"
