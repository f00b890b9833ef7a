"""Model definitions: plain PyTorch ``nn.Module``s, each with a config dataclass (its params section).

``vae`` (the single-frame pose VAE: encoder = LGM, decoder = PGM, §3.2), ``text_encoder`` (BERT or
the from-scratch Transformer of the w/o-BERT ablation), ``student`` (the Latent Learning Module:
length regulator + NAR decoder, §3.3-3.4, Eq. 4-11), ``fgd_encoder`` (NSLP-G's Transformer
autoencoder, the FGD feature extractor, Eq. 12), ``backtranslator`` (pose -> text for BLEU/ROUGE),
``layers`` (shared blocks) and ``io`` (``config.json`` + ``model.pt`` directories).
"""
