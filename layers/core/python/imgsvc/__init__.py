"""imgsvc: the image service's domain package (imaging, storage, records, cache).

Handlers in ``functions/`` stay thin and call into this package; it is shipped to Lambda
as the ``CoreLayer`` and found by tests through pytest's ``pythonpath``.
"""

__version__ = "0.1.0"
