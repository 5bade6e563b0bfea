"""contentfn core library: configuration, domain models, events, ports and adapters.

Cloud entry points (``functions/<fn>/gcp.py``, ``aws.py``) and the local runtime are thin
layers over this package; nothing here imports a cloud SDK outside its own adapter module.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
