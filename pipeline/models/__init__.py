"""Model definitions: plain PyTorch ``nn.Module``s with a config dataclass each.

``vae`` — the single-frame pose VAE whose encoder is the Latent Guiding Module (LGM) and whose
decoder is the Pose Generating Module (PGM) of the paper (§3.2, Eq. 1-2).
"""
