"""Layer 0, the pure core: configs, image and file I/O, data-set folders, model cards and weights, measures."""
