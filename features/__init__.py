"""Images in, feature table out: manifest, reading, pyradiomics extraction, wide table."""
