"""``refinedlr demo``, the README's main job: the refinedlr workflow end to end on scikit-learn's
digits (:mod:`refinedlr_demo.workflow`), a package of its own beside the library so that the
library's wheel holds no application. It adds the ``demo`` command to ``refinedlr`` through the
entry-point group ``refinedlr.commands`` (:mod:`refinedlr_demo.cli`).
"""
