"""refinedlr."""
