"""The paper's baselines as trained products (§4.3): their variants, saved model directories and
text -> pose generators (``pt``: Progressive Transformers, ``nslpg``: NSLP-G)."""
