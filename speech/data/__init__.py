"""Data: manifests (JSON lines), data set preparation, datasets, collation and batch sampling."""
