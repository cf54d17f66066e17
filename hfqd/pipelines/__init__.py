"""Deprecated: renamed :mod:`hfqd.runner` (a "pipeline" means something else in transformers). Goes in the next
release."""

import sys
import warnings

from ..runner import methods, translation

# `import hfqd.pipelines.methods` and `from hfqd.pipelines.translation import ...` keep working.
sys.modules[__name__ + ".methods"] = methods
sys.modules[__name__ + ".translation"] = translation

warnings.warn("hfqd.pipelines is renamed hfqd.runner; the old name goes in the next release.", FutureWarning,
              stacklevel=2)
