"""Notebook-first research workspace for conditional image generation with GANs

Modules:

- `lib.apps.draw`: Draw with a trained LatteGAN: a session that turns each typed instruction into the next picture, and the ipywidgets app over it — type, see, undo, start over.
- `lib.systems.geneva_gan`: The GeNeVA-GAN baseline as a training system: turns with their dialogue history as word ids, the official losses and learning rates, and drawing whole dialogues for the shared GeNeVA evaluation.
- `lib.systems.lattegan`: LatteGAN as a training system — its losses, iterative drawing of whole dialogues, evaluation with the GeNeVA detector and the copy-previous floor — and `train_lattegan`, the training entry point for LatteGAN and the GeNeVA-GAN baseline."""

__version__ = "0.0.1"
