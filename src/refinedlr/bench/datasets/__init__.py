"""Internals of :mod:`refinedlr.bench.data`: file formats (:mod:`.formats`) and source archives
(:mod:`.sources`)."""
