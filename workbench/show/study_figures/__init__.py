"""One module per study's figure; each takes that study's result and never runs a model."""
