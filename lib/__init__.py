"""Notebook-first research workspace for conditional image generation with GANs

Modules:

- `lib.data.embeddings`: LatteGAN's per-turn text embedding files: a BERT-architecture encoder's [CLS] vector and token memories for every turn of a GeNeVA dialogue, in the official h5 layout, written once and read by training and evaluation.
- `lib.systems.lattegan`: LatteGAN as a training system: its data (turns with their text embeddings), its losses, iterative generation from the background, and evaluation with the GeNeVA detector — everything the engine needs and nothing it owns."""

__version__ = "0.0.1"
