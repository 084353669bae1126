"""Instrument drivers and hardware rigs that implement the contract of :mod:`aeqprop.system`."""
