"""Example protocol files, shipped with the package (``importlib.resources.files("aeqprop.protocols")``)."""
