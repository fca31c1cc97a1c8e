"""The demo (``au demo``): every stage in order on MNIST, ending in one self-contained report.

>>> from au.demo import DemoConfig, run_demo
>>> run_demo(DemoConfig(keep=0.1), "runs/demo")   # runs/demo/report.html
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={"config": ["DemoConfig"], "demo_job": ["run_demo"]},
)
