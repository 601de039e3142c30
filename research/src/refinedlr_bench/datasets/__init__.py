"""Internals of :mod:`refinedlr_bench.data`: file formats (:mod:`.formats`) and source archives
(:mod:`.sources`)."""
