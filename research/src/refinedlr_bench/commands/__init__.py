"""The suites' command lines: ``refinedlr bench convex|deep|study`` (one module each)."""
