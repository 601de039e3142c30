"""refinedlr-bench: the research suite of refinedlr (benchmarks, the refinement study, datasets).

It depends on the library and adds ``refinedlr bench ...`` and ``refinedlr data ...`` to its
command line (:mod:`refinedlr_bench.cli`); the library never imports it. The layers, from the
top: the entry points (:mod:`.cli`), the command lines (:mod:`.commands`), the reports, the suites
(:mod:`.convex`, :mod:`.deep`, :mod:`.study_convex`, :mod:`.study_deep`), their definitions
(:mod:`.schedule_arms`, :mod:`.study_arms`, :mod:`.study_design`, ...) and the tools below them.
"""
